#!/bin/sh
# Serve the code location: the Dagster daemon (sensors, run queue) and the webserver in one
# container. If either process exits, the container exits so the orchestrator restarts it.
set -eu
WORKSPACE="${WORKSPACE:-/opt/dagster/app/workspace.yaml}"
mkdir -p "$AFFLUENT_DATA_DIR/raw" "$AFFLUENT_DATA_DIR/landing" "$DAGSTER_HOME"
# Without the instance settings the DuckDB writer pool is unlimited: never start without them.
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp /opt/dagster/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
dagster-daemon run -w "$WORKSPACE" &
daemon=$!
dagster-webserver -h 0.0.0.0 -p "${DAGSTER_PORT:-3000}" -w "$WORKSPACE" &
webserver=$!
trap 'kill "$daemon" "$webserver" 2>/dev/null; wait; exit 0' TERM INT
# POSIX sh has no `wait -n`: poll until one of the two is gone, then stop the other.
while kill -0 "$daemon" 2>/dev/null && kill -0 "$webserver" 2>/dev/null; do
  sleep 5
done
echo "a Dagster process exited; stopping the container" >&2
kill "$daemon" "$webserver" 2>/dev/null || true
exit 1
