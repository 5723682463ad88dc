# Serves the affluent_assets code location: Dagster webserver + daemon, and the upload page
# (port 3001), as a non-root user (uid 1001, or any uid with group 0, as on OpenShift).
# Build: docker build -t affluent-assets .   Run:
# docker run -p 3000:3000 -p 3001:3001 -e AFFLUENT_API_TOKEN=... -v affluent-data:/data affluent-assets
# Without a registry (podman and a local Debian base image): docs/deploy.md and .ci/image.
ARG BASE_IMAGE=python:3.11-slim

# Stage 1: the dependencies in a virtual environment, from pyproject.toml at the versions of
# requirements.lock (the ones CI tested), with an empty package so that a code edit does not
# reinstall them; then docker/slim-venv.sh removes what nothing here loads (pip, test suites,
# pyarrow's Flight RPC, source maps, symbol tables); no bytecode yet (see warm.py below).
FROM ${BASE_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# binutils (strip, readelf) for slim-venv.sh; this stage is not part of the runtime image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY docker/slim-venv.sh /usr/local/bin/slim-venv
RUN mkdir affluent_assets \
    && touch affluent_assets/__init__.py \
    && /opt/venv/bin/pip install --no-compile -c requirements.lock . \
    && /opt/venv/bin/pip uninstall --yes affluent_assets \
    && sh /usr/local/bin/slim-venv /opt/venv

# Stage 2: the project itself (rebuilt on every code change; cheap), installed into a staging
# root that the runtime image copies over the virtual environment.
FROM ${BASE_IMAGE} AS project
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY affluent_assets ./affluent_assets
RUN /opt/venv/bin/pip install --no-compile --no-deps --root /staging .

# The runtime image: the base, the virtual environment, the project.
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/opt/dagster \
    MPLCONFIGDIR=/tmp/matplotlib \
    DAGSTER_HOME=/data/dagster_home \
    AFFLUENT_DATA_DIR=/data \
    DAGSTER_PORT=3000 \
    AFFLUENT_WEB_PORT=3001

# uid 1001 by default; every folder it writes is owned by group 0 and group-writable, so that
# an arbitrary uid with group 0 (OpenShift's restricted policy) can write there too.
RUN groupadd --system --gid 1001 dagster \
    && useradd --system --uid 1001 --gid dagster --home-dir /opt/dagster --create-home dagster \
    && mkdir -p /data /opt/dagster/app \
    && chown -R 1001:0 /data /opt/dagster \
    && chmod -R g=u /data /opt/dagster

COPY --from=deps /opt/venv /opt/venv
COPY --from=project /staging/opt/venv /opt/venv
# Bytecode for exactly the modules the image's processes import (docker/warm.py; a broken
# library fails the build here); the rest of site-packages stays source only.
COPY docker/warm.py /opt/dagster/warm.py
RUN PYTHONDONTWRITEBYTECODE='' AFFLUENT_DATA_DIR=/tmp/warm DAGSTER_HOME=/tmp/warm \
        python -W ignore /opt/dagster/warm.py \
    && rm -rf /tmp/warm /tmp/matplotlib

WORKDIR /opt/dagster/app
COPY workspace.yaml ./
COPY --chmod=755 docker/start.sh /usr/local/bin/affluent-start
COPY --chmod=755 docker/healthcheck.py /usr/local/bin/affluent-healthcheck
# Instance settings (DuckDB writer pool of one); start.sh puts them into $DAGSTER_HOME when a
# mounted volume does not have them yet.
COPY --chmod=644 .dagster_home/dagster.yaml /opt/dagster/dagster.yaml

USER 1001:1001
VOLUME ["/data"]
EXPOSE 3000 3001

# The webserver (DAGSTER_PORT) and the upload page (AFFLUENT_WEB_PORT) both answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["affluent-healthcheck"]

CMD ["affluent-start"]
