#!/bin/sh
# Builds a local base image for the Dockerfile on a machine that cannot pull python:3.11-slim
# (no registry): a Debian root filesystem made by mmdebstrap from this machine's own apt sources,
# with Python 3, pip and venv, imported into podman as $1 (default localhost/affluent-base:bookworm).
# Build the project image on it with --build-arg BASE_IMAGE=<that name>. Idempotent: does nothing
# when the image exists (AFFLUENT_REBUILD_BASE=1 rebuilds).
set -eu
NAME="${1:-localhost/affluent-base:bookworm}"
SUITE="${AFFLUENT_BASE_SUITE:-bookworm}"
if podman image exists "$NAME" && [ "${AFFLUENT_REBUILD_BASE:-0}" != 1 ]; then
  echo "base image $NAME exists"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# mmdebstrap reads the machine's apt sources (mirror, snapshot, proxy settings) when none is given.
# Only what the Dockerfile needs: python3 with venv (which brings its own pip), `python`, CA
# certificates, passwd (useradd). mmdebstrap's merged-/usr step leaves usrmerge and with it the
# whole of perl (47 MB) behind: purged (by name: apt marks them manual), perl-base stays.
mmdebstrap --variant=minbase --quiet \
  --include=python3,python3-venv,python-is-python3,ca-certificates,passwd \
  --customize-hook='rm -f "$1"/usr/lib/python3.*/EXTERNALLY-MANAGED' \
  --customize-hook='for c in /usr/local/share/ca-certificates/*.crt; do [ -e "$c" ] && cp "$c" "$1/usr/local/share/ca-certificates/"; done; chroot "$1" update-ca-certificates >/dev/null' \
  --customize-hook='chroot "$1" apt-get purge -y -qq usrmerge perl libperl5.36 perl-modules-5.36 libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl >/dev/null' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
  "$SUITE" "$work/rootfs.tar"
podman import --quiet --change 'CMD ["python3"]' "$work/rootfs.tar" "$NAME" >/dev/null
echo "base image $NAME built from $SUITE ($(podman image inspect --format '{{.Size}}' "$NAME") bytes)"
