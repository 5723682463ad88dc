"""deploy/compose/ brought up for real with podman-compose, the Docker API offered by
`podman system service` on a socket of this test's own (`.ci/compose` runs it; `make test`
does not collect this folder). One test, in order:

- every service healthy (PostgreSQL, MLflow server, code server, webserver, daemon, upload);
- the main graph, launched through the webserver's GraphQL API, trains in a run container of
  its own (DockerRunLauncher), registering its model in the MLflow server (artifacts served by
  it, metadata in PostgreSQL);
- a file dropped in the shared volume is scored in another run container, started by the
  daemon for the code server's landing sensor; its list is downloaded from the upload page;
- the daemon's container is killed; it is restarted (restart: unless-stopped) and a later file
  is still scored;
- `down` leaves no container of the deployment or of its runs, running or not.

Every request goes to a container's loopback through `podman exec` (nothing targets another
address); containers, volumes and the network are removed at the end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.demo_files import write_extract
from container_tests.test_image import REPO, measure, podman

COMPOSE_DIR = REPO / "deploy" / "compose"
IMAGE = os.environ.get("AFFLUENT_IMAGE", "localhost/affluent-assets:ci")
POSTGRES_IMAGE = os.environ.get("AFFLUENT_POSTGRES_IMAGE", "localhost/affluent-postgres:ci")
TOKEN = "compose-test-token"
PROJECT = "affluent"
SERVICES = ("postgres", "mlflow", "codeserver", "webserver", "daemon", "upload")
# A lighter training than the default on a 6,000-row demo extract (as in test_image.py).
TRAIN_CONFIG = {
    "ops": {
        "model_training": {
            "config": {"families": ["xgboost"], "cv_folds": 2, "tuning_candidates": 3}
        }
    },
    "resources": {"extract": {"config": {"demo_rows": 6_000}}},
}
LAUNCH = """
mutation($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }
"""
RUN_STATUS = (
    "query($id: ID!) { runOrError(runId: $id) { ... on Run { status tags { key value } } } }"
)


def compose(*args: str, env: dict, timeout: float = 900, check: bool = True):
    binary = shutil.which("podman-compose")
    assert binary, "podman-compose is not installed (.ci/compose installs it)"
    result = subprocess.run(
        [binary, "-p", PROJECT, "-f", str(COMPOSE_DIR / "compose.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=COMPOSE_DIR,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podman-compose {args}:\n{result.stdout[-3000:]}\n{result.stderr}")
    return result


def container(service: str) -> str:
    return f"{PROJECT}_{service}_1"


def exec_python(service: str, code: str, *args: str, timeout: float = 60) -> str:
    return podman("exec", container(service), "python", "-c", code, *args, timeout=timeout).stdout


HTTP = """
import json, sys, urllib.error, urllib.request
url, token, body = sys.argv[1:4]
headers = {"Authorization": f"Bearer {token}"} if token else {}
data = None
if body:
    data, headers["Content-Type"] = body.encode(), "application/json"
try:
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=20) as r:
        print(json.dumps([r.status, r.read().decode()]))
except urllib.error.HTTPError as error:
    print(json.dumps([error.code, error.read().decode()]))
except OSError as error:
    print(json.dumps([0, str(error)]))
"""


def http(service: str, url: str, token: str = "", body: str = "") -> tuple[int, str]:
    status, text = json.loads(exec_python(service, HTTP, url, token, body))
    return status, text


def graphql(query: str, variables: dict) -> dict:
    status, text = http(
        "webserver",
        "http://127.0.0.1:3000/graphql",
        body=json.dumps({"query": query, "variables": variables}),
    )
    assert status == 200, text
    return json.loads(text)["data"]


def wait_for(condition, what: str, timeout: float = 600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(5)
    logs = {s: podman("logs", "--tail", "30", container(s), check=False).stderr for s in SERVICES}
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}:\n{logs}")


def healthy(service: str) -> bool:
    return podman("healthcheck", "run", container(service), check=False).returncode == 0


def run_containers() -> list[str]:
    found = podman(
        "ps", "--all", "--filter", "label=io.affluent.role=run", "--format", "{{.Names}}"
    )
    return found.stdout.split()


def run_status(run_id: str) -> tuple[str, dict]:
    run = graphql(RUN_STATUS, {"id": run_id})["runOrError"]
    return run["status"], {t["key"]: t["value"] for t in run["tags"]}


def wait_for_run(run_id: str, timeout: float = 900) -> dict:
    def finished():
        status, tags = run_status(run_id)
        return (status, tags) if status in ("SUCCESS", "FAILURE", "CANCELED") else None

    status, tags = wait_for(finished, f"run {run_id}", timeout)
    assert status == "SUCCESS", (run_id, status)
    return tags


def landing_runs() -> list[dict]:
    query = """{ runsOrError(filter: {pipelineName: "landing_job"}) { ... on Runs { results {
        runId status tags { key value } } } } }"""
    return graphql(query, {})["runsOrError"]["results"]


@pytest.fixture
def deployment(tmp_path):
    socket_dir = tmp_path / "podman"
    socket_dir.mkdir()
    socket = socket_dir / "podman.sock"
    env = os.environ.copy()
    env.setdefault("CONTAINERS_CONF", str(REPO / "docker" / "podman" / "containers.conf"))
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        env=env,
        start_new_session=True,
    )
    env |= {
        "AFFLUENT_IMAGE": IMAGE,
        "AFFLUENT_POSTGRES_IMAGE": POSTGRES_IMAGE,
        "AFFLUENT_API_TOKEN": TOKEN,
        "AFFLUENT_DOCKER_SOCKET": str(socket),
        # Loopback ports of the host that nothing else here uses.
        "AFFLUENT_DAGSTER_PORT": "13300",
        "AFFLUENT_WEB_PORT": "13301",
    }
    try:
        deadline = time.monotonic() + 30
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert socket.exists(), "podman system service did not create its socket"
        yield env
    finally:
        # Run containers first: stopped, they still hold the data volume.
        for name in run_containers():
            podman("rm", "--force", name, check=False)
        down = compose("down", "--volumes", env=env, timeout=300, check=False)
        print(down.stdout[-2000:], down.stderr[-2000:])
        for volume in ("affluent-compose-data", "affluent-compose-pgdata"):
            podman("volume", "rm", "--force", volume, check=False)
        podman("network", "rm", "--force", "affluent-compose", check=False)
        os.killpg(service.pid, signal.SIGTERM)
        service.wait(timeout=30)


def volume_path(name: str) -> Path:
    return Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", name).stdout.strip())


def drop(tmp_path: Path, name: str, rows: int, seed: int) -> str:
    staged = write_extract(
        generate_customers(rows, seed=seed).drop(columns="C_seg"), tmp_path / name
    )
    podman("cp", str(staged), f"{container('codeserver')}:/data/landing/{name}")
    return name


def scored_run_for(name: str) -> dict | None:
    for run in landing_runs():
        tags = {t["key"]: t["value"] for t in run["tags"]}
        if tags.get("affluent/landing_file") == name and run["status"] == "SUCCESS":
            return tags
    return None


def test_compose_deployment_trains_scores_and_survives_a_daemon_kill(deployment, tmp_path):
    env = deployment
    started = time.monotonic()
    compose("up", "-d", env=env)
    for service in SERVICES:
        wait_for(lambda s=service: healthy(s), f"{service} healthy", timeout=300)
    measure("compose all services healthy (s)", round(time.monotonic() - started, 1))

    # The main graph in a run container of its own.
    started = time.monotonic()
    launched = graphql(
        LAUNCH,
        {
            "params": {
                "selector": {
                    "repositoryLocationName": "affluent_assets",
                    "repositoryName": "__repository__",
                    "jobName": "affluent_job",
                },
                "runConfigData": TRAIN_CONFIG,
            }
        },
    )["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    tags = wait_for_run(run_id, timeout=1800)
    assert tags.get("docker/container_id"), tags
    assert run_containers(), "the run did not get a container of its own"
    measure("compose main graph in a run container (s)", round(time.monotonic() - started, 1))
    status, text = http(
        "mlflow", "http://127.0.0.1:5000/api/2.0/mlflow/registered-models/search?max_results=10"
    )
    assert status == 200 and "affluent" in text.lower(), text

    # A dropped file, scored in a run container started by the daemon for the sensor.
    started = time.monotonic()
    first = drop(tmp_path, "etb week 1.csv", 2_000, 21)
    tags = wait_for(lambda: scored_run_for(first), f"{first} scored", timeout=900)
    assert tags.get("docker/container_id"), tags
    measure("compose dropped file scored (s)", round(time.monotonic() - started, 1))
    status, batches = http("upload", "http://127.0.0.1:3001/api/batches", token=TOKEN)
    assert status == 200, batches
    assert http("upload", "http://127.0.0.1:3001/api/batches")[0] == 401
    (batch,) = [b["batch"] for b in json.loads(batches)["batches"]]
    status, csv = http(
        "upload", f"http://127.0.0.1:3001/api/batches/{batch}/candidates.csv", token=TOKEN
    )
    assert status == 200 and len(csv.strip().splitlines()) > 1, csv[:500]

    # Kill the daemon's process: the container exits and its restart policy brings it back.
    before = podman("inspect", "--format", "{{.RestartCount}}", container("daemon")).stdout
    pid = int(podman("inspect", "--format", "{{.State.Pid}}", container("daemon")).stdout)
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: (
            podman("inspect", "--format", "{{.RestartCount}}", container("daemon")).stdout != before
        ),
        "the daemon's container restarted",
        timeout=120,
    )
    measure(
        "compose daemon container restarted after the kill (s)", round(time.monotonic() - killed, 1)
    )
    wait_for(lambda: healthy("daemon"), "the restarted daemon healthy", timeout=300)
    measure(
        "compose restarted daemon healthy after the kill (s)", round(time.monotonic() - killed, 1)
    )
    later = drop(tmp_path, "etb week 2.csv", 1_000, 22)
    wait_for(lambda: scored_run_for(later), f"{later} scored after the restart", timeout=900)
    measure("compose later file scored after the kill (s)", round(time.monotonic() - killed, 1))
    measure("compose run containers", len(run_containers()))

    # Down: nothing of the deployment left (the stopped run containers are removed first: they
    # hold the data volume).
    for name in run_containers():
        podman("rm", "--force", name)
    compose("down", "--volumes", env=env, timeout=300)
    left = podman("ps", "--all", "--filter", f"name={PROJECT}_", "--format", "{{.Names}}")
    assert not left.stdout.split(), left.stdout
    assert not run_containers()
