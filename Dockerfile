# Serves the affluent_assets code location: Dagster webserver + daemon, as a non-root user.
# Build: docker build -t affluent-assets .   Run: docker run -p 3000:3000 -v affluent-data:/data affluent-assets
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

# Dependencies first (from pyproject.toml) so code edits do not reinstall them.
COPY pyproject.toml README.md ./
COPY affluent_assets ./affluent_assets
RUN pip install --no-cache-dir .

COPY workspace.yaml ./
COPY --chmod=755 docker/start.sh /usr/local/bin/affluent-start
COPY .dagster_home/dagster.yaml /opt/dagster/dagster.yaml

RUN mkdir -p /data/dagster_home /data/raw /data/landing \
    && cp /opt/dagster/dagster.yaml /data/dagster_home/dagster.yaml \
    && chown -R dagster:dagster /data

USER 1001:1001
VOLUME ["/data"]
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/server_info', timeout=4)"]

CMD ["affluent-start"]
