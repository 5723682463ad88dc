"""The upload API on a real server (`affluent serve` in its own process group, on a free port):
what lands in the landing folder, and the status code of every bad request."""

import json
import os
import socket
import time
from pathlib import Path

import pytest

from affluent_assets.lib import landing
from affluent_assets_tests.servers import AffluentServe, stop

TOKEN = "s3cret-token"
LIMIT = 50_000


def api_env(root: Path) -> dict:
    (root / "home").mkdir(exist_ok=True)
    return {
        **os.environ,
        "AFFLUENT_LANDING": str(root / "landing"),
        "AFFLUENT_QUARANTINE": str(root / "quarantine"),
        "AFFLUENT_LAKE": str(root / "lake"),
        "DAGSTER_HOME": str(root / "home"),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = AffluentServe(
        api_env(tmp_path_factory.mktemp("api")), "--max-upload-bytes", str(LIMIT), token=TOKEN
    ).wait()
    yield running
    stop(running.process)


CSV = b"C_ID,C_AGE\n1,40\n"


def test_an_upload_lands_whole_under_a_safe_new_name(server):
    status, body = server.upload("etb.csv", CSV)
    assert status == 202
    answer = json.loads(body)
    assert answer["status"] == "waiting" and answer["file"] in server.landed()
    assert (server.landing / answer["file"]).read_bytes() == CSV
    # The same name again: another batch, never a replacement of the first.
    again = json.loads(server.upload("etb.csv", CSV)[1])
    assert again["batch"] != answer["batch"] and len(server.landed()) == 2
    assert server.request("GET", f"/api/batches/{answer['batch']}")[0] == 200
    assert not server.staged()


@pytest.mark.parametrize(
    "hostile",
    ["../../etc/passwd.csv", "..\\..\\x.csv", "a/b/c.csv", "'; drop table x; --.csv",
     "ünïcødé ✓ list.csv", "x" * 300 + ".csv", ".hidden.csv", "..csv"],
)  # fmt: skip
def test_hostile_names_stay_in_the_folder_and_never_collide(server, hostile):
    before = set(server.landed())
    status, body = server.upload(hostile, CSV)
    assert status == 202, body
    name = json.loads(body)["file"]
    assert set(server.landed()) - before == {name}
    assert landing.resolve_inside(server.landing, name).parent == server.landing.resolve()
    assert landing.is_landing_name(name) and len(name.encode()) <= 120
    assert landing.batch_key_for(name) == name  # the name is its own batch key


def test_bad_requests_get_their_status_codes_and_leave_nothing(server):
    before = server.landed()
    assert server.upload("etb.csv", CSV, token=None)[0] == 401
    assert server.upload("etb.csv", CSV, token="wrong")[0] == 401
    assert server.request("GET", "/api/batches", token=None)[0] == 401
    status, body = server.upload("notes.txt", CSV)
    assert status == 415 and b"only .csv, .xlsx, .parquet" in body
    assert server.upload("big.csv", b"x" * (LIMIT + 1))[0] == 413
    status, _ = server.request(
        "POST", "/api/batches", b"x" * (LIMIT + 100_000), {"Content-Type": "text/csv"}
    )
    assert status == 413
    assert server.request("POST", "/api/batches", CSV, {"Content-Type": "text/csv"})[0] == 400
    assert server.request("GET", "/api/batches/nothing.csv")[0] == 404
    assert server.request("GET", "/api/batches/nothing.csv/candidates.csv")[0] == 404
    assert server.landed() == before and not server.staged()


def test_a_half_sent_upload_leaves_nothing(server):
    before = server.landed()
    boundary = "half"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.csv"\r\n\r\n'
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /api/batches HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + f"Content-Type: multipart/form-data; boundary={boundary}\r\n".encode()
            + f"Content-Length: {len(head) + 40_000}\r\n\r\n".encode()
            + head
            + b"C_ID,C_AGE\n" * 1000
        )
        time.sleep(1)
    deadline = time.monotonic() + 10
    while server.staged() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.landed() == before and not server.staged()


def test_the_openapi_description_is_served(server):
    status, body = server.request("GET", "/api/openapi.json", token=None)
    spec = json.loads(body)
    assert status == 200 and "/api/batches/{batch}/candidates.{format}" in spec["paths"]


def test_listening_beyond_loopback_needs_a_token(tmp_path):
    refused = AffluentServe(api_env(tmp_path), "--host", "0.0.0.0")
    assert refused.process.wait(timeout=60) == 2
    assert "refusing to listen on 0.0.0.0 without a token" in refused.log.read_text()


def _post(server, body: bytes, boundary: str = "b0undary"):
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return server.request("POST", "/api/batches", body, headers)


def _part(filename: str, content: bytes, boundary: str = "b0undary", name: str = "file") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\n\r\n'
        ).encode()
        + content
        + b"\r\n"
    )


def _end(boundary: str = "b0undary") -> bytes:
    return f"--{boundary}--\r\n".encode()


MALFORMED = {
    # kind: (body, status, the error message starts with)
    "boundary other than the header's": (
        _part("etb.csv", CSV, boundary="other") + _end("other"),
        400,
        "malformed multipart/form-data body (Expected boundary character",
    ),
    "broken part header": (
        b"--b0undary\r\nContent-Disposition form-data; name=file\r\n\r\n" + CSV + _end(),
        400,
        "malformed multipart/form-data body (Found invalid character",
    ),
    "a second part named file": (
        _part("etb.csv", CSV) + _part("more.csv", CSV) + _end(),
        400,
        "more than one field 'file' (etb.csv, more.csv): send one per upload",
    ),
    "a .txt part before a small .csv part": (
        _part("notes.txt", b"x") + _part("etb.csv", CSV) + _end(),
        415,
        "notes.txt: only .csv, .xlsx, .parquet files are taken",
    ),
    "a .txt part before a large .csv part": (
        _part("notes.txt", b"x") + _part("etb.csv", CSV * 2_000) + _end(),
        415,
        "notes.txt: only .csv, .xlsx, .parquet files are taken",
    ),
    "a 0-byte file": (
        _part("etb.csv", b"") + _end(),
        400,
        "etb.csv: the file is empty (0 bytes)",
    ),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_a_malformed_or_ambiguous_upload_gets_a_4xx_that_says_why(server, kind):
    body, expected, message = MALFORMED[kind]
    before = server.landed()
    status, answer = _post(server, body)
    assert status == expected, answer
    assert json.loads(answer)["error"].startswith(message), answer
    assert server.landed() == before and not server.staged()
