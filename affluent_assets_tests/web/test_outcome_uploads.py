"""Campaign outcome files handed in over the API of a real server (`affluent serve` in its own
process group): what lands in the outcomes folder, the status code of every bad request, and the
state the API reads back once a real `model_outcomes` run (same Dagster instance, same
warehouse) has read or quarantined them."""

import json
import os
import re
import socket
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from affluent_assets.defs.monitoring.outcomes import model_outcomes
from affluent_assets.defs.resources import DuckDBTableIOManager
from affluent_assets.lib import landing
from affluent_assets.lib.landing import UPLOAD_STAGING
from affluent_assets_tests.defs.conftest import landing_stores, model_store  # noqa: F401
from affluent_assets_tests.defs.test_outcomes import land
from affluent_assets_tests.servers import AffluentServe, stop
from affluent_assets_tests.web.test_api import _end, _part, api_env

TOKEN = "outcome-token"
BOUNDARY = "----affluent-outcomes"
OUTCOME_CSV = b"customer_key,model_version,batch_key,upgraded\n1-1,1,march.csv,yes\n"


def multipart(filename: str, content: bytes) -> tuple[bytes, dict]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"'
        "\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return head + content + f"\r\n--{BOUNDARY}--\r\n".encode(), headers


def upload_outcome(server: AffluentServe, filename: str, content: bytes, **kwargs):
    body, headers = multipart(filename, content)
    return server.request("POST", "/api/outcomes", body, headers, **kwargs)


def get_json(server: AffluentServe, path: str):
    status, body = server.request("GET", path)
    assert status == 200, (path, status, body)
    return json.loads(body)


def in_folder(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != UPLOAD_STAGING)


def staged(folder: Path) -> list[Path]:
    return list((folder / UPLOAD_STAGING).glob("*"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("outcome-api")
    outcomes = root / "outcomes"
    outcomes.mkdir()
    env = {**api_env(root), "AFFLUENT_OUTCOMES": str(outcomes),
           "AFFLUENT_WAREHOUSE": str(root / "warehouse.duckdb")}  # fmt: skip
    running = AffluentServe(env, "--max-upload-bytes", "50000", token=TOKEN).wait()
    running.outcomes = outcomes
    yield running
    stop(running.process)


def test_an_outcome_upload_lands_whole_under_a_safe_new_name(server):
    status, body = upload_outcome(server, "../March campaign (called).csv", OUTCOME_CSV)
    assert status == 202, body
    answer = json.loads(body)
    name = answer["file"]
    # The safe stem (with a hash of the original when it had to change) and a random tag.
    assert re.fullmatch(r"March_campaign_called[A-Za-z0-9_.-]*-[0-9a-f]{8}\.csv", name), name
    assert answer == {"file": name, "status": "waiting", "links": {"self": f"/api/outcomes/{name}"}}
    assert (server.outcomes / name).read_bytes() == OUTCOME_CSV
    assert name in in_folder(server.outcomes) and not staged(server.outcomes)
    # The outcomes sensor reads it; the staging folder is not named as a skipped entry.
    assert name in landing.scan_landing(server.outcomes)
    assert UPLOAD_STAGING not in landing.ignored_entries(server.outcomes)
    assert name not in server.landed()  # an outcome file is never a batch to score
    assert get_json(server, f"/api/outcomes/{name}") == {
        "file": name, "status": "waiting", "detail": None,
    }  # fmt: skip
    assert {"file": name, "status": "waiting", "detail": None} in get_json(server, "/api/outcomes")[
        "files"
    ]


def test_bad_outcome_uploads_get_their_status_codes_and_leave_nothing(server):
    before = in_folder(server.outcomes)
    assert upload_outcome(server, "called.csv", OUTCOME_CSV, token=None)[0] == 401
    assert upload_outcome(server, "called.csv", OUTCOME_CSV, token="wrong")[0] == 401
    assert server.request("GET", "/api/outcomes", token=None)[0] == 401
    assert server.request("GET", "/api/outcomes/figures", token=None)[0] == 401
    status, body = upload_outcome(server, "called.txt", OUTCOME_CSV)
    assert status == 415 and b"only .csv, .xlsx, .parquet" in body
    assert upload_outcome(server, "big.csv", b"x" * 50_001)[0] == 413
    headers = {"Content-Type": "text/csv"}
    assert server.request("POST", "/api/outcomes", OUTCOME_CSV, headers)[0] == 400
    assert server.request("GET", "/api/outcomes/nothing-12345678.csv")[0] == 404
    assert server.request("GET", "/api/outcomes/..%2F..%2Fetc%2Fpasswd")[0] == 404
    assert in_folder(server.outcomes) == before and not staged(server.outcomes)


def test_malformed_outcome_uploads_get_400_with_a_reason(server):
    before = in_folder(server.outcomes)
    body, headers = multipart("called.csv", OUTCOME_CSV)
    other = {"Content-Type": "multipart/form-data; boundary=not-the-one-in-the-body"}
    broken = body.replace(b"Content-Disposition:", b"Content-Disposition")
    parts = _part("a.csv", OUTCOME_CSV, BOUNDARY) + _part("b.csv", OUTCOME_CSV, BOUNDARY)
    for sent, sent_headers, words in (
        (body, other, b"malformed multipart/form-data body"),
        (broken, headers, b"malformed multipart/form-data body"),
        (parts + _end(BOUNDARY), headers, b"more than one field 'file' (a.csv, b.csv)"),
        (multipart("called.csv", b"")[0], headers, b"called.csv: the file is empty (0 bytes)"),
    ):
        status, answer = server.request("POST", "/api/outcomes", sent, sent_headers)
        assert status == 400 and words in answer, (status, answer)
    assert in_folder(server.outcomes) == before and not staged(server.outcomes)


def test_a_half_sent_outcome_upload_leaves_nothing(server):
    before = in_folder(server.outcomes)
    head, _ = multipart("cut.csv", b"")
    head = head[: head.index(b"\r\n\r\n") + 4]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /api/outcomes HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n".encode()
            + f"Content-Length: {len(head) + 40_000}\r\n\r\n".encode()
            + head
            + b"1-1,1,march.csv,yes\n" * 1000
        )
        time.sleep(1)
    deadline = time.monotonic() + 10
    while staged(server.outcomes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert in_folder(server.outcomes) == before and not staged(server.outcomes)


def test_no_figures_before_the_first_outcomes_run(server):
    assert get_json(server, "/api/outcomes/figures") == {"figures": []}


def called_list(stores) -> pd.DataFrame:
    """A landed batch's list as a campaign gives it back: its 20 best flagged customers, all
    called, 12 of them upgraded."""
    with duckdb.connect(str(stores.warehouse), read_only=True) as con:
        scores = con.execute(
            "select batch_key, customer_key, model_version, predicted_segment"
            " from batch_scores order by affluent_probability desc"
        ).df()
    called = scores[scores["predicted_segment"] == "AFFLUENT"].head(20)
    called = called.drop(columns="predicted_segment")
    called["upgraded"] = ["yes"] * 10 + ["no", "true", "1"] + ["no"] * 7
    return called


def run_outcomes(stores, folder: Path) -> dg.ExecuteInProcessResult:
    """model_outcomes as the outcomes job runs it: its table written to the warehouse."""
    duckdb_resource = DuckDBResource(database=str(stores.warehouse))
    return dg.materialize(
        [model_outcomes],
        resources={"duckdb": duckdb_resource, "mlflow_models": stores.models.resource(),
                   "io_manager": DuckDBTableIOManager(duckdb=duckdb_resource)},
        run_config={"ops": {"model_outcomes": {"config": {"outcomes_dir": str(folder)}}}},
        instance=stores.instance,
    )  # fmt: skip


def test_the_api_reads_back_what_the_outcomes_run_did(landing_stores, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AFFLUENT_CONTROL_SHARE", "0")  # no one held back: all given back called
    stores = landing_stores
    home, outcomes = tmp_path / "home", tmp_path / "outcomes"
    home.mkdir()
    # The server reads the instance of DAGSTER_HOME: the runs below are recorded in it.
    stores.instance = dg.DagsterInstance.from_config(str(home))
    land(stores, "march.csv", rows=800, seed=61)
    assert stores.run("march.csv").success
    env = {**os.environ, "AFFLUENT_LANDING": str(stores.landing),
           "AFFLUENT_QUARANTINE": str(stores.quarantine), "AFFLUENT_LAKE": str(stores.lake),
           "AFFLUENT_WAREHOUSE": str(stores.warehouse), "AFFLUENT_OUTCOMES": str(outcomes),
           "DAGSTER_HOME": str(home)}  # fmt: skip
    server = AffluentServe(env).wait()
    try:
        called = called_list(stores)
        good = json.loads(upload_outcome(server, "march called.csv", _csv(called))[1])["file"]
        bad_rows = called.head(3).assign(upgraded=["yes", "soon", "no"])
        bad = json.loads(upload_outcome(server, "typo.csv", _csv(bad_rows))[1])["file"]
        listed = get_json(server, "/api/outcomes")["files"]
        assert [(f["file"], f["status"]) for f in listed] == [(bad, "waiting"), (good, "waiting")]

        assert run_outcomes(stores, outcomes).success
        version = stores.models.model.version
        assert get_json(server, f"/api/outcomes/{good}") == {
            "file": good, "status": "read", "detail": f"20 customers, 12 upgraded (v{version})",
        }  # fmt: skip
        rejected = get_json(server, f"/api/outcomes/{bad}")
        assert rejected["status"] == "quarantined"
        assert f"{bad}: is not a valid outcomes file — column 'upgraded'" in rejected["detail"]
        assert "data rows 2 ('soon')" in rejected["detail"]
        assert [f["file"] for f in get_json(server, "/api/outcomes")["files"]] == [bad, good]

        [row] = get_json(server, "/api/outcomes/figures")["figures"]
        assert (row["source"], row["model_version"]) == ("outcome files", version)
        assert (row["customers"], row["flagged"], row["affluent"]) == (20, 20, 12)
        assert row["realized_precision"] == 12 / 20 and 0 < row["expected_precision"] < 1
        assert row["realized_recall"] is None  # empty in the table: nobody uncalled to miss
        low, high = row["estimated_low"], row["estimated_high"]
        assert low <= row["estimated_precision"] <= high  # what the called's own scores promised
        answer = get_json(server, "/api/outcomes/uplift")  # no one was held back
        assert answer["uplift"] == [] and answer["note"].startswith("no control rows")

        # A file changed after the run is waiting again: the run read an older copy.
        later = time.time() + 5
        os.utime(outcomes / good, (later, later))
        assert get_json(server, f"/api/outcomes/{good}")["status"] == "waiting"
    finally:
        stop(server.process)
        stores.instance.dispose()


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()
