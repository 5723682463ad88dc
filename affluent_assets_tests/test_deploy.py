"""The Kubernetes deployment files (deploy/helm, docs/deploy.md, .github/workflows/ci.yml) agree
with what they deploy: the Dockerfile, the code's environment variables, pyproject.toml and the
instance settings in .dagster_home/dagster.yaml. No cluster, Helm or network needed: these check
the files, not an installation (see docs/deploy.md, "What was tested here and what was not")."""

from __future__ import annotations

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
DOCKERFILE = REPO / "Dockerfile"
INSTANCE = REPO / ".dagster_home" / "dagster.yaml"
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
DOCS = REPO / "docs" / "deploy.md"

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
