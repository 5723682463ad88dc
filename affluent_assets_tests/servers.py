"""Real server processes for tests: a PostgreSQL cluster (Debian's `postgresql` package, run as
the `postgres` user on a temporary data directory and free port) and an `mlflow server`. Each
is started in its own process group and stopped by it, so nothing outlives the test."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from affluent_assets.lib.landing import UPLOAD_STAGING

MLFLOW = Path(sys.executable).with_name("mlflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the whole process group, wait, then SIGKILL what is left."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def postgres_bin() -> Path | None:
    """Debian's server binaries (the `postgresql` package), newest major version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), reverse=True)
    return Path(found[0]).parent if found else None


@dataclass(frozen=True)
class Postgres:
    port: int
    socket_dir: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        with contextlib.closing(psycopg2.connect(self.url())) as con:
            con.autocommit = True
            con.cursor().execute(f'create database "{name}"')
        return self.url(name)


def _as_postgres(command: list[str]) -> list[str]:
    """The server refuses to run as root: as root, run it as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A fresh cluster (trust authentication, loopback only) for the duration of the block."""
    binaries = postgres_bin()
    if binaries is None:
        raise RuntimeError("PostgreSQL server not installed: apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="affluent-pg-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    server = None
    try:
        subprocess.run(
            _as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
                          "-A", "trust", "-E", "UTF8", "--no-sync"]),
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        server = subprocess.Popen(
            _as_postgres([str(binaries / "postgres"), "-D", str(data), "-p", str(port),
                          "-h", "127.0.0.1", "-k", str(sockets), "-c", "fsync=off"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        _wait_for_port(port, server, "postgres")
        yield Postgres(port, str(sockets))
    finally:
        if server is not None:
            # SIGTERM is PostgreSQL's "smart" shutdown, which waits for clients; SIGINT is fast.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGINT)
            stop(server)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(backend_store_uri: str, artifacts: Path) -> Iterator[str]:
    """`mlflow server` with its artifacts served by the server (clients never see the folder);
    yields its tracking URI."""
    port = free_port()
    log = artifacts.parent / "mlflow-server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", backend_store_uri, "--serve-artifacts",
             "--artifacts-destination", str(artifacts), "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_for_http(f"{uri}/health", server, log)
        yield uri
    finally:
        stop(server)


def _wait_for_port(port: int, process: subprocess.Popen, name: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {process.stderr.read() if process.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not listen on port {port} within {seconds} s")


def _wait_for_http(url: str, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{url}: no answer within {seconds} s:\n{log.read_text()[-3000:]}")


REPO = Path(__file__).resolve().parent.parent
DAGSTER = Path(sys.executable).with_name("dagster")


@dataclass
class DagsterStores:
    """A temporary `dagster dev` world: instance home (the repo's instance settings), landing,
    quarantine, lake and warehouse, scoring with the model registered at `tracking_uri`."""

    root: Path
    tracking_uri: str
    artifact_root: str

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / ".dagster_home" / "dagster.yaml", self.home / "dagster.yaml")
        self.landing.mkdir(parents=True, exist_ok=True)

    home = property(lambda self: self.root / "dagster_home")
    data = property(lambda self: self.root / "data")
    landing = property(lambda self: self.data / "landing")
    quarantine = property(lambda self: self.data / "quarantine")
    warehouse = property(lambda self: self.data / "wh.duckdb")
    lake = property(lambda self: self.data / "lake")

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "AFFLUENT_DATA_DIR": str(self.data),
            "AFFLUENT_LANDING": str(self.landing),
            "AFFLUENT_QUARANTINE": str(self.quarantine),
            "AFFLUENT_WAREHOUSE": str(self.warehouse),
            "AFFLUENT_LAKE": str(self.lake),
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "AFFLUENT_MLFLOW_ARTIFACTS": self.artifact_root,
            # The outcome and trace sensors look every 5 s, not 30: the tests wait on them.
            "AFFLUENT_MONITORING_TICK_SECONDS": "5",
        }

    def start(self, log: Path) -> subprocess.Popen:
        """`dagster dev` (webserver, daemon, code server) in its own process group."""
        with log.open("a") as out:
            return subprocess.Popen(
                [str(DAGSTER), "dev", "-w", "workspace.yaml", "-p", str(free_port())],
                cwd=REPO, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip


def count_rows(warehouse: Path, sql: str, params: list) -> int | None:
    """A short read-only look; None while the file is missing or a writer holds the lock."""
    if not warehouse.exists():
        return None
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return con.execute(sql, params).fetchall()[0][0]
    except duckdb.Error:
        return None


def wait_for(condition, what: str, server: subprocess.Popen, log: Path, seconds: float = 150):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if server.poll() is not None:
            pytest.fail(f"dagster dev exited ({server.returncode}):\n{log.read_text()[-4000:]}")
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}; dagster dev log:\n{log.read_text()[-4000:]}")


class AffluentServe:
    """`affluent serve` on a free port, in its own process group, with `env`'s folders."""

    def __init__(self, env: dict[str, str], *args: str, token: str | None = None):
        self.landing = Path(env["AFFLUENT_LANDING"])
        self.landing.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.token = token
        env = {k: v for k, v in env.items() if k != "AFFLUENT_API_TOKEN"}
        if token:
            env["AFFLUENT_API_TOKEN"] = token
        self.log = Path(env["DAGSTER_HOME"]).parent / f"serve-{self.port}.log"
        command = [sys.executable, "-m", "affluent_assets.cli", "serve", "--port", str(self.port)]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [*command, *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self) -> AffluentServe:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.log.read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("affluent serve did not listen")

    def wait_ready(self, seconds: float = 90) -> None:
        """Until the inference routes answer ready (a champion is loaded)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.request("GET", "/v2/health/ready")[0] == 200:
                return
            time.sleep(0.2)
        raise AssertionError(f"never ready:\n{self.log.read_text()[-3000:]}")

    def request(self, method, path, body=None, headers=None, token: str | None = "default"):
        headers = dict(headers or {})
        token = self.token if token == "default" else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def upload(self, filename: str, content: bytes, **kwargs):
        """POST /api/batches with `content` as the multipart field `file`."""
        boundary = "----affluent-test"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self.request("POST", "/api/batches", body, headers, **kwargs)

    def landed(self) -> list[str]:
        return sorted(p.name for p in self.landing.iterdir() if p.name != UPLOAD_STAGING)

    def staged(self) -> list[Path]:
        return list((self.landing / UPLOAD_STAGING).glob("*"))
