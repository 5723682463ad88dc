#!/bin/sh
# Serve the code location: the Dagster daemon (sensors, run queue), the webserver and the
# upload page in one container. If either process exits, the container exits so the orchestrator restarts it.
set -eu
WORKSPACE="${WORKSPACE:-/opt/dagster/app/workspace.yaml}"
mkdir -p "$AFFLUENT_DATA_DIR/raw" "$AFFLUENT_DATA_DIR/landing" "$DAGSTER_HOME"
# Without the instance settings the DuckDB writer pool is unlimited: never start without them.
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp /opt/dagster/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
# The instance's storage is made (or brought to this Dagster's schema) once, here: on a new
# DAGSTER_HOME the three processes below would each create the SQLite schedule storage, and two
# at once can stamp its schema version twice (alembic: "more than one head"), after which no
# process can open the instance.
dagster instance migrate >/dev/null
dagster-daemon run -w "$WORKSPACE" &
daemon=$!
dagster-webserver -h 0.0.0.0 -p "${DAGSTER_PORT:-3000}" -w "$WORKSPACE" &
webserver=$!
# The upload page and API; outside loopback it refuses to start without AFFLUENT_API_TOKEN.
affluent serve --host 0.0.0.0 --port "${AFFLUENT_WEB_PORT:-3001}" &
upload=$!
trap 'kill "$daemon" "$webserver" "$upload" 2>/dev/null; wait; exit 0' TERM INT
# POSIX sh has no `wait -n`: poll until one of them is gone, then stop the others.
while kill -0 "$daemon" 2>/dev/null && kill -0 "$webserver" 2>/dev/null \
    && kill -0 "$upload" 2>/dev/null; do
  sleep 5
done
echo "a server process exited; stopping the container" >&2
kill "$daemon" "$webserver" "$upload" 2>/dev/null || true
exit 1
