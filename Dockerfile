# Serves the affluent_assets code location: Dagster webserver + daemon, and the upload page
# (port 3001), as a non-root user. Build: docker build -t affluent-assets .   Run:
# docker run -p 3000:3000 -p 3001:3001 -e AFFLUENT_API_TOKEN=... -v affluent-data:/data affluent-assets
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/data/dagster_home \
    AFFLUENT_DATA_DIR=/data

RUN groupadd --system --gid 1001 dagster \
    && useradd --system --uid 1001 --gid dagster --home-dir /opt/dagster --create-home dagster

WORKDIR /opt/dagster/app

# Dependencies first, from pyproject.toml at the versions of requirements.lock (the ones CI
# tested) with an empty package, so that a code edit does not reinstall them; then the code
# itself without dependencies.
COPY pyproject.toml requirements.lock README.md ./
RUN mkdir affluent_assets \
    && touch affluent_assets/__init__.py \
    && pip install --no-cache-dir -c requirements.lock . \
    && pip uninstall --yes affluent_assets \
    && rm -rf affluent_assets build affluent_assets.egg-info
COPY affluent_assets ./affluent_assets
RUN pip install --no-cache-dir --no-deps .

COPY workspace.yaml ./
COPY --chmod=755 docker/start.sh /usr/local/bin/affluent-start
# Instance settings (DuckDB writer pool of one); start.sh puts them into $DAGSTER_HOME when a
# mounted volume does not have them yet.
COPY .dagster_home/dagster.yaml /opt/dagster/dagster.yaml

RUN mkdir -p /data && chown dagster:dagster /data

USER 1001:1001
VOLUME ["/data"]
EXPOSE 3000 3001

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/server_info', timeout=4)"]

CMD ["affluent-start"]
