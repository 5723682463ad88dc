"""The Kubernetes deployment files (deploy/helm, docs/deploy.md, .github/workflows/ci.yml) agree
with what they deploy: the Dockerfile, the code's environment variables, pyproject.toml, the
instance settings in .dagster_home/dagster.yaml, and (deploy/helm/upload.yaml) the `affluent
serve` command and the routes of the upload app. No cluster, Helm or network needed: these check
the files, not an installation (see docs/deploy.md, "What was tested here and what was not")."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
HELM = REPO / "deploy" / "helm"
VALUES = HELM / "values.yaml"
PVC = HELM / "pvc.yaml"
SECRETS = HELM / "secrets.example.yaml"
UPLOAD = HELM / "upload.yaml"
START_SCRIPT = REPO / "docker" / "start.sh"
DOCKERFILE = REPO / "Dockerfile"
INSTANCE = REPO / ".dagster_home" / "dagster.yaml"
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
DOCS = REPO / "docs" / "deploy.md"
UPLOAD_DOCS = REPO / "docs" / "upload.md"
# The chart's default global.dagsterHome (the chart's values.yaml; not set in ours): where its
# pods find dagster.yaml. Read from the chart's source, not from a rendered chart.
CHART_DAGSTER_HOME = "/opt/dagster/dagster_home"

# Peak RSS of a landing run: about 1.0-1.5 GB in chunks of 100,000 rows (2.8 GB was seen with
# 250,000-row chunks); the limit must stay above the larger figure.
PEAK_RUN_BYTES = 2.8e9


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


@pytest.fixture(scope="module")
def deployment(values) -> dict:
    deployments = values["dagster-user-deployments"]
    assert deployments["enabled"] is True
    return deployments["deployments"][0]


@pytest.fixture(scope="module")
def launcher(values) -> dict:
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    return values["runLauncher"]["config"]["k8sRunLauncher"]


@pytest.fixture(scope="module")
def dockerfile() -> dict[str, list[str]]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def secrets() -> dict[str, dict]:
    documents = [d for d in yaml.safe_load_all(SECRETS.read_text()) if d]
    assert all(d["kind"] == "Secret" for d in documents)
    return {
        d["metadata"]["name"]: {**d.get("data", {}), **d.get("stringData", {})} for d in documents
    }


def parse_dockerfile(text: str) -> dict[str, list[str]]:
    """Instruction -> its arguments, one entry per occurrence (continuation lines joined)."""
    instructions: dict[str, list[str]] = {}
    logical = ""
    for line in text.splitlines():
        if not logical and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            logical += line.rstrip()[:-1] + " "
            continue
        logical += line
        word, _, rest = logical.strip().partition(" ")
        instructions.setdefault(word.upper(), []).append(rest.strip())
        logical = ""
    return instructions


def dockerfile_env(dockerfile) -> dict[str, str]:
    env = {}
    for arguments in dockerfile.get("ENV", []):
        for pair in shlex.split(arguments):
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def env_names_read_by_code() -> set[str]:
    """Names the package reads: os.environ.get("X"), os.environ["X"], os.getenv("X"),
    dg.EnvVar("X") (writes such as os.environ.setdefault do not count)."""
    pattern = re.compile(
        r"""(?:environ\.get|getenv|EnvVar(?:\.int)?)\(\s*["']([A-Za-z0-9_]+)["']"""
        r"""|environ\[\s*["']([A-Za-z0-9_]+)["']\s*\]"""
    )
    names = set()
    for source in (REPO / "affluent_assets").rglob("*.py"):
        for match in pattern.finditer(source.read_text()):
            names.add(match.group(1) or match.group(2))
    return names


def container_env(entries) -> dict[str, str | None]:
    """The chart accepts env as a list of EnvVar objects or a name -> value map."""
    if isinstance(entries, dict):
        return dict(entries)
    return {entry["name"]: entry.get("value") for entry in entries or []}


def values_env(values, secrets) -> dict[str, str | None]:
    """Every environment variable the values set, in any pod, including the keys of the Secrets
    they load with envSecrets (values from the example)."""
    deployment = values["dagster-user-deployments"]["deployments"][0]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    env = container_env(deployment.get("env"))
    for section in ("dagsterWebserver", "dagsterDaemon"):
        env |= container_env(values.get(section, {}).get("env"))
    for pair in launcher.get("envVars", []):
        name, _, value = pair.partition("=")
        env[name] = value or None
    for ref in [*deployment.get("envSecrets", []), *launcher.get("envSecrets", [])]:
        env |= secrets[ref["name"]]
    return env


def quantity(text) -> float:
    """A Kubernetes quantity ("3Gi", "500m", "1") as a number (bytes or cores)."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    units |= {"m": 1e-3, "T": 1e12}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    assert match, f"not a quantity: {text!r}"
    number, unit = match.groups()
    return float(number) * (units[unit] if unit else 1)


def data_volume(pod: dict) -> tuple[str, str]:
    """(claimName, mountPath) of the pod's PersistentVolumeClaim volume."""
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod.get("volumes", [])
        if "persistentVolumeClaim" in v
    }
    assert len(claims) == 1, f"expected one PVC volume, got {claims}"
    ((name, claim),) = claims.items()
    mounts = [m["mountPath"] for m in pod.get("volumeMounts", []) if m["name"] == name]
    assert len(mounts) == 1, f"volume {name!r} must be mounted once, got {mounts}"
    return claim, mounts[0]


def test_user_deployment_names_an_image(deployment):
    image = deployment["image"]
    assert isinstance(image["repository"], str) and image["repository"].strip()
    assert isinstance(image["tag"], str) and image["tag"].strip()
    # Run pods start with the code server's image: a moving tag would mix code versions.
    assert image["tag"] != "latest"


def test_code_server_loads_the_module_pyproject_names(deployment):
    module = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    args = deployment["dagsterApiGrpcArgs"]
    flags = [i for i, arg in enumerate(args) if arg in ("-m", "--module-name")]
    assert len(flags) == 1 and args[flags[0] + 1] == module, args
    assert (REPO / Path(*module.split("."))).with_suffix(".py").exists()


def test_grpc_port_is_the_port_the_dockerfile_exposes(deployment, dockerfile):
    exposed = {int(p.split("/")[0]) for e in dockerfile["EXPOSE"] for p in e.split()}
    assert deployment["port"] in exposed, (deployment["port"], exposed)


def test_every_env_var_set_is_one_the_code_reads(values, secrets):
    env = values_env(values, secrets)
    read = env_names_read_by_code()
    assert {"AFFLUENT_DATA_DIR", "MLFLOW_TRACKING_URI"} <= read  # the scan itself works
    assert {"AFFLUENT_DATA_DIR", "MLFLOW_TRACKING_URI"} <= set(env)
    unknown = sorted(set(env) - read)
    assert not unknown, f"set in deploy/helm but never read by affluent_assets: {unknown}"


def test_env_paths_lie_on_the_shared_volume(values, secrets, deployment, dockerfile):
    _, mount = data_volume(deployment)
    env = values_env(values, secrets)
    paths = {name: value for name, value in env.items() if value and value.startswith("/")}
    assert len(paths) >= 6, paths  # data dir, extract, warehouse, lake, landing, quarantine...
    for name, value in paths.items():
        assert PurePosixPath(value).is_relative_to(mount), f"{name}={value} is not under {mount}"
    # The mount is the image's data folder: the code's defaults land there too.
    assert env["AFFLUENT_DATA_DIR"] == mount == dockerfile_env(dockerfile)["AFFLUENT_DATA_DIR"]
    assert mount in " ".join(dockerfile["VOLUME"])


def test_code_server_and_run_pods_mount_the_same_claim(deployment, launcher):
    name = yaml.safe_load(PVC.read_text())["metadata"]["name"]
    assert data_volume(deployment) == (name, data_volume(launcher)[1])
    assert data_volume(launcher)[0] == name


def test_pvc_is_read_write_many():
    pvc = yaml.safe_load(PVC.read_text())
    assert pvc["kind"] == "PersistentVolumeClaim"
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    assert quantity(pvc["spec"]["resources"]["requests"]["storage"]) > 0


def test_pods_run_as_the_dockerfile_user(deployment, launcher, dockerfile):
    uid, _, gid = dockerfile["USER"][-1].partition(":")
    uid, gid = int(uid), int(gid or uid)
    for container in (deployment["securityContext"], launcher["securityContext"]):
        assert (container["runAsUser"], container["runAsGroup"]) == (uid, gid)
    run_pod = launcher["runK8sConfig"]["podSpecConfig"]["securityContext"]
    assert deployment["podSecurityContext"]["fsGroup"] == run_pod["fsGroup"] == gid


def test_run_launcher_sets_memory_requests_and_limits_per_run(deployment, launcher):
    resources = launcher["runK8sConfig"]["containerConfig"]["resources"]
    request = quantity(resources["requests"]["memory"])
    limit = quantity(resources["limits"]["memory"])
    assert 0 < request <= limit
    assert limit > PEAK_RUN_BYTES, "the limit must leave room above a landing run's peak RSS"
    assert quantity(resources["requests"]["cpu"]) >= 1
    # The code server's resources would be copied into every run pod (includeConfigInLaunchedRuns)
    # and replace these.
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    assert not deployment.get("resources")


def test_run_queue_and_pool_limits_equal_the_instance_settings(values):
    instance = yaml.safe_load(INSTANCE.read_text())
    runs, pools = instance["concurrency"]["runs"], instance["concurrency"]["pools"]
    daemon = values["dagsterDaemon"]
    assert daemon["enabled"] is True and daemon["runMonitoring"]["enabled"] is True
    coordinator = daemon["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"
    queue = coordinator["config"]["queuedRunCoordinator"]
    assert queue["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert queue["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    # The chart refuses to render run limits in both places.
    assert not values["concurrency"].get("runs")
    assert values["concurrency"]["enabled"] is True
    assert values["concurrency"]["pools"]["defaultLimit"] == pools["default_limit"]
    assert values["telemetry"]["enabled"] == instance["telemetry"]["enabled"]


def test_instance_database_and_secrets_are_wired(values, deployment, launcher, secrets):
    postgresql = values["postgresql"]
    assert postgresql["enabled"] is False and postgresql["postgresqlHost"]
    assert values["generatePostgresqlPasswordSecret"] is False
    # The chart reads the password from this Secret under this key.
    assert "postgresql-password" in secrets[values["global"]["postgresqlSecretName"]]
    for ref in [*deployment["envSecrets"], *launcher["envSecrets"]]:
        assert ref["name"] in secrets


def test_docs_install_the_chart_version_pyproject_pins():
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (version,) = [d.split("==")[1] for d in dependencies if d.startswith("dagster==")]
    docs = DOCS.read_text()
    assert "helm repo add dagster https://dagster-io.github.io/helm" in docs
    assert re.search(rf"helm upgrade --install .*--version {re.escape(version)}\b", docs)
    assert "-f deploy/helm/values.yaml" in docs
    assert f"--version {version}" in VALUES.read_text()
    assert "What was tested here and what was not" in docs


def test_the_image_installs_the_run_launcher_and_instance_storage():
    """Run pods import the instance's K8sRunLauncher and PostgreSQL storage from the image."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[=<>~ ]", dependency, maxsplit=1)[0] for dependency in dependencies}
    assert {"dagster-k8s", "dagster-postgres"} <= names


def test_ci_workflow_runs_the_ci_script_and_pushes_only_the_scanned_image():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["main"] and "v*" in triggers["push"]["tags"]
    assert triggers["pull_request"]["branches"] == ["main"]
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]

    def uses(job: str, action: str) -> list[dict]:
        return [s for s in jobs[job]["steps"] if s.get("uses", "").startswith(action + "@")]

    test = jobs["test"]
    assert [s["run"] for s in test["steps"] if "run" in s][-1] == "bash .ci/run"
    assert uses("test", "actions/setup-python")[0]["with"]["python-version"] == "3.11"
    assert any("postgresql" in s.get("run", "") for s in test["steps"])

    image = jobs["image"]
    assert image["needs"] == "test" and "permissions" not in image
    (build,) = uses("image", "docker/build-push-action")
    assert build["with"]["load"] is True and build["with"]["push"] is False
    (scan,) = uses("image", "aquasecurity/trivy-action")
    assert scan["with"]["image-ref"] == build["with"]["tags"]
    assert scan["with"]["severity"] == "CRITICAL" and str(scan["with"]["exit-code"]) == "1"

    push = jobs["push"]
    assert push["needs"] == "image" and "refs/tags/v" in push["if"]
    assert push["permissions"] == {"contents": "read", "packages": "write"}
    (login,) = uses("push", "docker/login-action")
    assert login["with"]["registry"] == "ghcr.io"
    assert "secrets.GITHUB_TOKEN" in login["with"]["password"]
    granted = [name for name, job in jobs.items() if "packages" in job.get("permissions", {})]
    assert granted == ["push"]
    for job in jobs.values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.search(r"@(v\d+|[0-9a-f]{40})$", step["uses"]), step["uses"]


####################################################################################################
# deploy/helm/upload.yaml: the upload page and API (`affluent serve`) next to the chart.
####################################################################################################


@pytest.fixture(scope="module")
def upload() -> dict[str, dict]:
    """kind -> the one document of that kind in upload.yaml."""
    documents = [d for d in yaml.safe_load_all(UPLOAD.read_text()) if d]
    kinds = [d["kind"] for d in documents]
    assert sorted(kinds) == ["Deployment", "Service"], kinds
    return {d["kind"]: d for d in documents}


@pytest.fixture(scope="module")
def upload_pod(upload) -> dict:
    return upload["Deployment"]["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def upload_container(upload_pod) -> dict:
    (container,) = upload_pod["containers"]
    return container


def upload_env(container) -> dict[str, dict]:
    """Variable name -> its EnvVar entry (each name set once)."""
    names = [entry["name"] for entry in container["env"]]
    assert len(names) == len(set(names)), names
    return {entry["name"]: entry for entry in container["env"]}


def chart_fullname(release: str, chart: str = "dagster") -> str:
    """The chart's `dagster.fullname` (no overrides): the release name if it contains the
    chart's name, else `<release>-<chart>`."""
    return release if chart in release else f"{release}-{chart}"[:63].rstrip("-")


def start_script_serve() -> tuple[str, int]:
    """(host, default port) of `affluent serve` in the image's start script."""
    match = re.search(
        r'affluent serve --host (\S+) --port "\$\{AFFLUENT_WEB_PORT:-(\d+)\}"',
        START_SCRIPT.read_text(),
    )
    assert match, "docker/start.sh no longer starts `affluent serve --host H --port ...`"
    return match.group(1), int(match.group(2))


def asgi_get(app, path: str, headers: list[tuple[bytes, bytes]] = ()) -> tuple[int, bytes]:
    """One GET through the ASGI app, as the kubelet's probe sends it (no Authorization)."""
    messages: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"affluent-upload"), *headers],
        "client": ("10.0.0.1", 40000), "server": ("0.0.0.0", 3001),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    (start,) = [m for m in messages if m["type"] == "http.response.start"]
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], body


def test_upload_runs_the_code_servers_image_once(upload, upload_container, deployment):
    spec = upload["Deployment"]["spec"]
    assert spec["replicas"] == 1
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    image = deployment["image"]
    assert upload_container["image"] == f"{image['repository']}:{image['tag']}"
    assert upload_container["imagePullPolicy"] == image["pullPolicy"]


def test_upload_command_is_affluent_serve_on_the_images_port(
    upload, upload_container, dockerfile, monkeypatch
):
    from affluent_assets import cli

    command = upload_container["command"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert command[0] in scripts and scripts[command[0]] == "affluent_assets.cli:main"
    # The default port is read from the environment when the parser is built.
    monkeypatch.delenv("AFFLUENT_WEB_PORT", raising=False)
    monkeypatch.delenv("AFFLUENT_WEB_HOST", raising=False)
    parser = cli._parser()
    args = parser.parse_args(command[1:])  # exits (SystemExit) on an unknown subcommand/flag
    assert args.command == "serve"
    script_host, script_port = start_script_serve()
    assert args.host == script_host == "0.0.0.0"
    assert args.port == script_port == parser.parse_args(["serve"]).port
    assert f"--port {args.port}" in UPLOAD_DOCS.read_text()
    exposed = {int(p.split("/")[0]) for e in dockerfile["EXPOSE"] for p in e.split()}
    assert args.port in exposed
    (port,) = upload_container["ports"]
    assert port["containerPort"] == args.port
    (service_port,) = upload["Service"]["spec"]["ports"]
    assert service_port["port"] == args.port
    assert service_port["targetPort"] in (port["name"], args.port)


def test_upload_service_is_cluster_internal_and_selects_the_pod(upload):
    service = upload["Service"]["spec"]
    assert service["type"] == "ClusterIP"
    labels = upload["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"] and service["selector"].items() <= labels.items()


def test_upload_pod_runs_as_the_dockerfile_user(upload_pod, upload_container, dockerfile):
    uid, _, gid = dockerfile["USER"][-1].partition(":")
    uid, gid = int(uid), int(gid or uid)
    context = upload_container["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)
    assert context["runAsNonRoot"] is True and context["allowPrivilegeEscalation"] is False
    assert upload_pod["securityContext"]["fsGroup"] == gid


def test_upload_env_is_read_by_the_code_and_matches_the_code_server(
    upload_container, values, secrets
):
    env = upload_env(upload_container)
    read = env_names_read_by_code()
    ours = {name for name in env if name.startswith(("AFFLUENT_", "MLFLOW_"))}
    unknown = sorted(ours - read)
    assert not unknown, f"set in upload.yaml but never read by affluent_assets: {unknown}"
    # The page reads landing, quarantine and lake (web/app.py WebSettings.from_environment).
    assert {"AFFLUENT_LANDING", "AFFLUENT_QUARANTINE", "AFFLUENT_LAKE"} <= ours
    # Every path is exactly the one the code server and the run pods get.
    paths = {name: entry["value"] for name, entry in env.items() if "value" in entry}
    paths = {name: value for name, value in paths.items() if name.startswith("AFFLUENT_")}
    server = values_env(values, secrets)
    assert paths == {name: value for name, value in server.items() if name.startswith("AFFLUENT_")}


def test_upload_mounts_the_shared_claim_where_the_code_server_does(
    upload_pod, upload_container, deployment
):
    pod = {"volumes": upload_pod["volumes"], "volumeMounts": upload_container["volumeMounts"]}
    name = yaml.safe_load(PVC.read_text())["metadata"]["name"]
    assert data_volume(pod) == (name, data_volume(deployment)[1])


def test_upload_token_comes_from_an_example_secret(upload_container, secrets):
    entry = upload_env(upload_container)["AFFLUENT_API_TOKEN"]
    assert "value" not in entry, "the token must come from a Secret, not the manifest"
    ref = entry["valueFrom"]["secretKeyRef"]
    assert ref["key"] in secrets[ref["name"]]
    assert "AFFLUENT_API_TOKEN" in env_names_read_by_code()


def test_upload_reads_the_charts_instance(upload_pod, upload_container, values, secrets):
    env = upload_env(upload_container)
    home = values.get("global", {}).get("dagsterHome", CHART_DAGSTER_HOME)
    assert env["DAGSTER_HOME"]["value"] == home
    release = re.search(r"helm upgrade --install (\S+) dagster/dagster", DOCS.read_text())
    assert release, "docs/deploy.md no longer names the release"
    configmaps = {
        v["name"]: v["configMap"]["name"] for v in upload_pod["volumes"] if "configMap" in v
    }
    assert list(configmaps.values()) == [f"{chart_fullname(release.group(1))}-instance"]
    ((volume, _),) = configmaps.items()
    (mount,) = [m for m in upload_container["volumeMounts"] if m["name"] == volume]
    assert mount["mountPath"] == f"{home}/dagster.yaml" and mount["subPath"] == "dagster.yaml"
    # DAGSTER_HOME itself is writable (an emptyDir), not the read-only ConfigMap.
    (home_mount,) = [m for m in upload_container["volumeMounts"] if m["mountPath"] == home]
    (home_volume,) = [v for v in upload_pod["volumes"] if v["name"] == home_mount["name"]]
    assert "emptyDir" in home_volume
    # The chart's dagster.yaml reads the database password from DAGSTER_PG_PASSWORD.
    ref = env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": values["global"]["postgresqlSecretName"], "key": "postgresql-password"}
    assert ref["key"] in secrets[ref["name"]]


def test_upload_probes_hit_a_route_the_app_serves_without_the_token(upload_container, tmp_path):
    from affluent_assets.web import batches
    from affluent_assets.web.app import WebSettings, create_app

    folders = batches.Folders(str(tmp_path / "l"), str(tmp_path / "q"), str(tmp_path / "k"))
    app = create_app(WebSettings(folders, token="probe-test-token"))
    (port,) = upload_container["ports"]
    probes = [upload_container[p] for p in ("startupProbe", "readinessProbe", "livenessProbe")]
    for probe in probes:
        check = probe["httpGet"]
        assert check["port"] in (port["name"], port["containerPort"])
        status, body = asgi_get(app, check["path"])
        assert status == 200, (check["path"], status, body[:200])
    # The token is enforced on the API itself, so the probe route is not just any path.
    assert asgi_get(app, "/api/batches")[0] == 401


def test_upload_resources_are_modest(upload_container, launcher):
    resources = upload_container["resources"]
    request = quantity(resources["requests"]["memory"])
    limit = quantity(resources["limits"]["memory"])
    assert 0 < request <= limit <= 2 * 2**30
    run_limit = quantity(
        launcher["runK8sConfig"]["containerConfig"]["resources"]["limits"]["memory"]
    )
    assert limit < run_limit, "uploads stream to the volume; the page needs less than a run"
    assert 0 < quantity(resources["requests"]["cpu"]) <= 1


def test_docs_apply_the_upload_manifest():
    docs = DOCS.read_text()
    assert re.search(r"kubectl apply .*-f deploy/helm/upload\.yaml", docs)
    assert "port-forward" in docs and "svc/affluent-upload" in docs


def test_upload_manifests_use_only_kubernetes_fields(upload):
    """Read into the Kubernetes client's models (kubernetes, installed with dagster-k8s) and
    written back: a misspelled or misplaced field would be dropped and show as a difference.
    Checks names and nesting against the client's API version, not a server's validation."""
    from kubernetes import client

    class Response:
        def __init__(self, document: dict):
            self.data = json.dumps(document)

    api = client.ApiClient()
    for kind, document in upload.items():
        model = api.deserialize(Response(document), f"V1{kind}")
        assert api.sanitize_for_serialization(model) == document, kind


# The image itself (Dockerfile, docker/): what container_tests/ checks by running it, here read
# from the files, so a change that breaks a deployment fails `make test` before any build.
HEALTHCHECK = REPO / "docker" / "healthcheck.py"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_dockerfile_builds_from_python_slim_unless_told_otherwise():
    """A real Docker engine builds exactly as before; `--build-arg BASE_IMAGE=` names a local
    base on a machine without a registry (docker/base-image.sh, .ci/image)."""
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, re.MULTILINE)
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", text, re.MULTILINE)
    named = {stage for _, stage in stages if stage}
    assert all(base == "${BASE_IMAGE}" or base in named for base, _ in stages), stages
    assert stages[-1][1] == "", "the last stage is the runtime image"


def test_healthcheck_follows_the_ports_the_start_script_uses(dockerfile):
    (health,) = dockerfile["HEALTHCHECK"]
    assert "affluent-healthcheck" in health and "3000" not in health
    script = HEALTHCHECK.read_text()
    start = START_SCRIPT.read_text()
    env = dockerfile_env(dockerfile)
    exposed = {int(p.split("/")[0]) for e in dockerfile["EXPOSE"] for p in e.split()}
    for name in ("DAGSTER_PORT", "AFFLUENT_WEB_PORT"):
        assert f'"{name}"' in script and f"${{{name}:-{env[name]}}}" in start
        assert int(env[name]) in exposed
    assert any(
        "docker/healthcheck.py /usr/local/bin/affluent-healthcheck" in c for c in dockerfile["COPY"]
    )


def test_healthcheck_passes_only_when_both_servers_answer(tmp_path):
    """The script itself, against two real HTTP servers on loopback ports other than the
    defaults (the old HEALTHCHECK reported unhealthy when DAGSTER_PORT changed)."""
    import subprocess
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Ok) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    dagster_port, web_port = (s.server_address[1] for s in servers)

    def check(web: int) -> int:
        env = {"DAGSTER_PORT": str(dagster_port), "AFFLUENT_WEB_PORT": str(web), "PATH": ""}
        return subprocess.run(
            [sys.executable, str(HEALTHCHECK)], env=env, capture_output=True, timeout=30
        ).returncode

    try:
        assert check(web_port) == 0
        assert check(_free_port()) == 1  # the upload page down: unhealthy
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_image_runs_as_any_uid_with_group_zero_and_a_read_only_root(dockerfile):
    """OpenShift's restricted policy runs the image as an arbitrary uid with group 0: every
    folder the processes write is owned by group 0 and group-writable; everything else they
    write goes to /tmp (a tmpfs or emptyDir beside --read-only / readOnlyRootFilesystem)."""
    env = dockerfile_env(dockerfile)
    (setup,) = [r for r in dockerfile["RUN"] if "useradd" in r]
    for folder in ("/data", env["HOME"]):
        assert re.search(rf"chown -R 1001:0 [^&]*{folder}\b", setup), folder
        assert re.search(rf"chmod -R g=u [^&]*{folder}\b", setup), folder
    assert PurePosixPath(env["DAGSTER_HOME"]).is_relative_to(env["AFFLUENT_DATA_DIR"])
    assert env["MPLCONFIGDIR"].startswith("/tmp/")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert dockerfile["USER"][-1] == "1001:1001"


def test_helm_pods_run_as_the_image_user_with_its_paths(deployment, launcher, dockerfile):
    """The chart's pods use the image's uid and data folder (also checked above) and its PATH:
    the chart's `dagster api grpc` command is found in the image's virtual environment."""
    env = dockerfile_env(dockerfile)
    assert env["PATH"].split(":")[0] == "/opt/venv/bin"
    uid, _, gid = dockerfile["USER"][-1].partition(":")
    for context in (deployment["securityContext"], launcher["securityContext"]):
        assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid))
    assert "1000650000" in VALUES.read_text(), "the OpenShift note in values.yaml"


COMPOSE = REPO / "deploy" / "compose"


def test_compose_instance_keeps_the_local_queue_and_pools_and_reaches_its_network():
    """deploy/compose/dagster.yaml: the same run queue, tag limits, DuckDB pool and recovery as
    .dagster_home/dagster.yaml; its run containers join the compose network and mount the
    compose data volume; every variable it reads is set for the daemon (which passes them on)."""
    local = yaml.safe_load(INSTANCE.read_text())
    instance = yaml.safe_load((COMPOSE / "dagster.yaml").read_text())
    compose = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    assert instance["concurrency"] == local["concurrency"]
    assert instance["run_retries"] == local["run_retries"]
    assert instance["run_coordinator"] == local["run_coordinator"]
    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    config = launcher["config"]
    assert config["network"] == compose["networks"]["default"]["name"]
    data = compose["volumes"]["data"]["name"]
    assert config["container_kwargs"]["volumes"] == [f"{data}:/data"]
    daemon = compose["services"]["daemon"]
    env = {**compose["x-project"]["environment"], **daemon.get("environment", {})}
    assert set(config["env_vars"]) <= set(env), set(config["env_vars"]) - set(env)
    assert instance["storage"]["postgres"]["postgres_db"]["password"] == {
        "env": "DAGSTER_PG_PASSWORD"
    }
    assert any(v.endswith(":/var/run/docker.sock") for v in daemon["volumes"])


def test_compose_services_run_the_image_with_what_the_code_reads():
    compose = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "mlflow", "codeserver", "webserver", "daemon", "upload"}
    read = env_names_read_by_code()
    for name, service in services.items():
        env = {**compose["x-project"]["environment"], **service.get("environment", {})}
        ours = {n for n in env if n.startswith(("AFFLUENT_", "MLFLOW_")) and name != "postgres"}
        assert ours <= read, (name, ours - read)
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)  # loopback only
    assert "--serve-artifacts" in services["mlflow"]["command"]
    grpc = " ".join(services["codeserver"]["command"])
    assert "dagster api grpc" in grpc and "-m affluent_assets.definitions" in grpc
    workspace = yaml.safe_load((COMPOSE / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    assert (
        entry["grpc_server"]["host"] == "codeserver"
        and f"-p {entry['grpc_server']['port']}" in grpc
    )
    upload = services["upload"]
    assert upload["command"][:2] == ["affluent", "serve"]
    assert "AFFLUENT_API_TOKEN" in upload["environment"]
