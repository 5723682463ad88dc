#!/bin/sh
# Serve the code location: the Dagster daemon (sensors, run queue) and the webserver in one
# container. If either process exits, the container exits so the orchestrator restarts it.
set -eu
mkdir -p "$AFFLUENT_DATA_DIR/raw" "$AFFLUENT_DATA_DIR/landing" "$DAGSTER_HOME"
dagster-daemon run -w /opt/dagster/app/workspace.yaml &
dagster-webserver -h 0.0.0.0 -p "${DAGSTER_PORT:-3000}" -w /opt/dagster/app/workspace.yaml &
# POSIX sh has no `wait -n`: poll until one of the two children is gone.
while kill -0 "$(jobs -p | head -n 1)" 2>/dev/null && kill -0 "$(jobs -p | tail -n 1)" 2>/dev/null; do
  sleep 5
done
echo "a Dagster process exited; stopping the container" >&2
exit 1
