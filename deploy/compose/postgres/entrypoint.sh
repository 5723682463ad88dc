#!/bin/sh
# First start: a cluster with password authentication and the databases `dagster` and
# `mlflow`; then the server, listening on the compose network.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
  initdb -D "$PGDATA" -U postgres --pwfile=/tmp/pwfile --auth=scram-sha-256 >/dev/null
  rm -f /tmp/pwfile
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  for db in dagster mlflow; do
    echo "CREATE DATABASE $db;" | postgres --single -D "$PGDATA" postgres >/dev/null
  done
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
