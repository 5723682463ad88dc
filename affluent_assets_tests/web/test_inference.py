"""The inference service over real HTTP (`affluent serve` in its own process group, on a free
port, following a real MLflow store): both protocols and every format, the same answers as the
batch path, each kind of bad request (answered without echoing a value), the token, the pool's
limits, and a promotion while requests are in flight."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

from affluent_assets.lib import lake
from affluent_assets.lib.champion import load_champion
from affluent_assets.lib.contract import RAW_COLUMNS
from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.schemas import raw_extract_schema
from affluent_assets.lib.scorer import REASON_COLUMNS, SCORE_COLUMNS, score_rows
from affluent_assets.lib.validation import validate_frame
from affluent_assets_tests.defs.conftest import MODEL_NAME, LandingStores, register_tiny_model
from affluent_assets_tests.servers import AffluentServe, stop

TOKEN = "inference-token"


def serve_env(root: Path, store_uri: str, **settings: str) -> dict:
    (root / "home").mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "AFFLUENT_LANDING": str(root / "landing"),
        "AFFLUENT_QUARANTINE": str(root / "quarantine"),
        "AFFLUENT_LAKE": str(root / "lake"),
        "DAGSTER_HOME": str(root / "home"),
        "MLFLOW_TRACKING_URI": store_uri,
        "AFFLUENT_SERVE_POLL_SECONDS": "0.5",
        **settings,
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return register_tiny_model(tmp_path_factory.mktemp("inference-mlflow"))


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    limits = {"AFFLUENT_SERVE_MAX_ROWS": "500", "AFFLUENT_SERVE_MAX_BODY_BYTES": "400000"}
    env = serve_env(tmp_path_factory.mktemp("inference"), store.tracking_uri, **limits)
    running = AffluentServe(env).wait()
    running.wait_ready()
    yield running
    stop(running.process)


ROWS = generate_customers(60, seed=11).drop(columns=["C_seg"])


def post_json(server, path, payload, **kwargs):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, answer = server.request(
        "POST", path, body, {"Content-Type": "application/json"}, **kwargs
    )
    return status, json.loads(answer)


def expected_scores(store, rows: pd.DataFrame) -> pd.DataFrame:
    """The batch path's answer for the same rows: the contract check, then the one scorer."""
    scorer = load_champion(store.tracking_uri, MODEL_NAME)
    valid = validate_frame(raw_extract_schema(require_label=False), rows.copy(), "request")
    return score_rows(scorer, valid, "request").scores


def assert_same(predictions: list[dict], expected: pd.DataFrame) -> None:
    answered = pd.DataFrame(predictions)
    assert list(answered.columns) == ["c_id", *SCORE_COLUMNS]
    np.testing.assert_allclose(
        answered["affluent_probability"], expected["affluent_probability"], rtol=0, atol=1e-9
    )
    assert answered["flagged"].tolist() == expected["flagged"].tolist()
    for column in REASON_COLUMNS:
        assert (
            answered[column].tolist()
            == expected[column].where(expected[column].notna(), None).tolist()
        )
    np.testing.assert_allclose(
        answered["expected_precision"].astype(float), expected["expected_precision"], atol=1e-12
    )


def split_payload(rows: pd.DataFrame) -> dict:
    return {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}


def records(rows: pd.DataFrame) -> list[dict]:
    return json.loads(rows.to_json(orient="records"))


@pytest.mark.parametrize("shape", ["dataframe_split", "dataframe_records", "instances", "inputs"])
def test_every_mlflow_json_format_scores_like_the_batch_path(server, store, shape):
    rows = ROWS.head(25)
    payload = {
        "dataframe_split": split_payload(rows),
        "dataframe_records": {"dataframe_records": records(rows)},
        "instances": {"instances": records(rows)},
        "inputs": {"inputs": {c: list(v.values()) for c, v in json.loads(rows.to_json()).items()}},
    }[shape]
    status, answer = post_json(server, "/invocations", payload)
    assert status == 200, answer
    assert answer["model_version"] == store.model.version
    assert_same(answer["predictions"], expected_scores(store, rows))


def test_a_csv_body_scores_like_the_batch_path(server, store):
    rows = ROWS.head(10)
    status, answer = server.request(
        "POST", "/invocations", rows.to_csv(index=False).encode(), {"Content-Type": "text/csv"}
    )
    assert status == 200
    assert_same(json.loads(answer)["predictions"], expected_scores(store, rows))


def test_an_mlflow_client_works_unchanged(server, store):
    client = ScoringServerClient("127.0.0.1", server.port)
    response = client.invoke(ROWS.head(5))
    predictions = response.get_predictions()
    assert len(predictions) == 5 and "affluent_probability" in predictions.columns
    assert set(predictions["model_version"]) == {store.model.version}


def test_health_and_version_say_which_model_answers(server, store):
    for path in ("/ping", "/health", "/v2/health/ready", f"/v2/models/{MODEL_NAME}/ready"):
        status, body = server.request("GET", path)
        assert status == 200 and json.loads(body)["model_version"] == store.model.version
    assert json.loads(server.request("GET", "/v2/health/live")[1]) == {"live": True}
    version = json.loads(server.request("GET", "/version")[1])
    assert version == {"model_name": MODEL_NAME, "model_version": store.model.version,
                       "reason": None}  # fmt: skip


def test_v2_metadata_lists_every_contract_column_and_output(server, store):
    status, body = server.request("GET", f"/v2/models/{MODEL_NAME}")
    metadata = json.loads(body)
    assert status == 200 and metadata["versions"] == [store.model.version]
    inputs = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert list(inputs) == list(RAW_COLUMNS)
    assert inputs["C_ID"] == "INT64" and inputs["MTHCASA"] == "FP64" and inputs["C_EDU"] == "BYTES"
    assert [o["name"] for o in metadata["outputs"]] == SCORE_COLUMNS


def v2_request(rows: pd.DataFrame, **extra) -> dict:
    datatypes = {"int": "INT64", "float": "FP64", "text": "BYTES"}
    inputs = [
        {"name": column, "shape": [len(rows)], "datatype": datatypes[RAW_COLUMNS[column]],
         "data": json.loads(rows[column].to_json(orient="records"))}
        for column in rows.columns
    ]  # fmt: skip
    return {"inputs": inputs, **extra}


def test_v2_infer_echoes_the_id_and_names_each_output(server, store):
    rows = ROWS.head(12)
    status, answer = post_json(
        server, f"/v2/models/{MODEL_NAME}/infer", v2_request(rows, id="req-42")
    )
    assert status == 200, answer
    assert answer["id"] == "req-42" and answer["model_version"] == store.model.version
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert list(outputs) == SCORE_COLUMNS
    assert outputs["affluent_probability"]["shape"] == [12]
    expected = expected_scores(store, rows)
    np.testing.assert_allclose(
        outputs["affluent_probability"]["data"], expected["affluent_probability"], atol=1e-9
    )
    assert (
        outputs["reason_1"]["data"]
        == expected["reason_1"].where(expected["reason_1"].notna(), None).tolist()
    )
    only = post_json(server, f"/v2/models/{MODEL_NAME}/infer",
                     v2_request(rows, outputs=[{"name": "flagged"}]))[1]  # fmt: skip
    assert [o["name"] for o in only["outputs"]] == ["flagged"]


SECRET_NUMBER = -987654.321
SECRET_TEXT = "SECRET-7781"


def bad_rows() -> pd.DataFrame:
    rows = ROWS.head(4).astype(object)
    rows.loc[1, "C_AGE"] = SECRET_NUMBER
    rows.loc[2, "Asset value"] = SECRET_TEXT
    rows.loc[3, "C_EDU"] = "\x01" + SECRET_TEXT
    return rows


def assert_no_value_echoed(answer) -> None:
    text = json.dumps(answer)
    for value in (SECRET_TEXT, "987654", "98765"):
        assert value not in text


def test_rows_that_break_the_contract_get_422_naming_row_column_and_check(server):
    status, answer = post_json(server, "/invocations", split_payload(bad_rows()))
    assert status == 422
    found = {}
    for violation in answer["violations"]:
        found.setdefault((violation["column"], tuple(violation["rows"])), []).append(
            violation["check"]
        )
    assert {"must not be negative", "must be a whole number"} == set(found[("C_AGE", (1,))])
    assert found[("Asset value", (2,))][0].startswith("value of the wrong type")
    assert "control character" in found[("C_EDU", (3,))][0]
    assert_no_value_echoed(answer)
    v2_status, v2_answer = post_json(server, f"/v2/models/{MODEL_NAME}/infer",
                                     v2_request(bad_rows()))  # fmt: skip
    assert v2_status == 422 and v2_answer["violations"]
    assert_no_value_echoed(v2_answer)


def test_a_missing_column_is_named(server):
    status, answer = post_json(server, "/invocations", split_payload(ROWS.head(2).drop(
        columns=["C_AGE"])))  # fmt: skip
    assert status == 422
    assert {"column": "C_AGE", "check": "missing column", "rows": [], "count": 0} in answer[
        "violations"
    ]


SECRET_JSON = b'{"dataframe_records": [{"C_ID": 1, "C_AGE": "SECRET-7781"'


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (SECRET_JSON, "application/json", 400),  # cut off: not JSON
        (b'["SECRET-7781"]', "application/json", 400),  # not an object
        (b'{"SECRET-7781": []}', "application/json", 400),  # no known format
        (b'{"dataframe_records": [], "instances": []}', "application/json", 400),  # two
        (b'{"dataframe_records": []}', "application/json", 400),  # no rows
        (
            b'{"dataframe_split": {"columns": ["C_ID", "C_AGE"], "data": [[1]]}}',
            "application/json",
            400,
        ),  # a short row
        (b'{"dataframe_records": [{"C_ID": ["SECRET-7781"]}]}', "application/json", 400),
        (b'{"dataframe_records": [{"C_ID": 1}]}', "application/xml", 415),
        (b"SECRET-7781", "text/plain", 415),
        (b"\xff\xfe\x00SECRET-7781", "text/csv", 400),
    ],
)
def test_malformed_requests_get_4xx_without_the_value(server, body, content_type, status):
    got, answer = server.request("POST", "/invocations", body, {"Content-Type": content_type})
    assert got == status
    assert_no_value_echoed(json.loads(answer))


@pytest.mark.parametrize(
    "payload",
    [
        {"inputs": "SECRET-7781"},
        {"inputs": [{"name": "C_ID", "shape": [2], "datatype": "INT64", "data": [1]}]},
        {"inputs": [{"name": "C_ID", "shape": [1], "datatype": "SECRET", "data": [1]}]},
        {"inputs": [{"name": "C_ID", "shape": [1], "datatype": "INT64", "data": [1]},
                    {"name": "C_ID", "shape": [1], "datatype": "INT64", "data": [2]}]},
        {"inputs": [{"name": "C_ID", "shape": [1], "datatype": "INT64", "data": [1]},
                    {"name": "C_AGE", "shape": [2], "datatype": "INT64", "data": [1, 2]}]},
        {"inputs": [], "outputs": [{"name": "SECRET-7781"}]},
    ],
)  # fmt: skip
def test_malformed_v2_requests_get_400_without_the_value(server, payload):
    status, answer = post_json(server, f"/v2/models/{MODEL_NAME}/infer", payload)
    assert status == 400, answer
    assert_no_value_echoed(answer)


def test_too_many_rows_or_too_big_a_body_get_413(server):
    many = pd.concat([ROWS] * 9, ignore_index=True)  # 540 rows > 500
    status, answer = post_json(server, "/invocations", split_payload(many))
    assert status == 413 and "AFFLUENT_SERVE_MAX_ROWS" in answer["message"]
    huge = json.dumps({"dataframe_records": [{"C_ID": 1, "pad": "x" * 500_000}]}).encode()
    status, answer = post_json(server, "/invocations", huge)
    assert status == 413 and "AFFLUENT_SERVE_MAX_BODY_BYTES" in answer["message"]


def test_every_route_but_the_page_and_probes_needs_the_token(store, tmp_path):
    env = serve_env(tmp_path, store.tracking_uri)
    server = AffluentServe(env, token=TOKEN).wait()
    try:
        server.wait_ready()
        assert server.request("POST", "/invocations", b"{}", token=None)[0] == 401
        assert server.request("GET", f"/v2/models/{MODEL_NAME}", token=None)[0] == 401
        assert server.request("GET", "/api/batches", token=None)[0] == 401
        assert server.request("GET", "/v2/health/ready", token=None)[0] == 200
        assert server.request("GET", "/", token=None)[0] == 200
        status, _ = post_json(server, "/invocations", split_payload(ROWS.head(1)))
        assert status == 200
    finally:
        stop(server.process)


def test_without_a_champion_it_is_not_ready_and_says_why(tmp_path):
    env = serve_env(tmp_path, f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}")
    server = AffluentServe(env).wait()
    try:
        time.sleep(1)
        status, body = server.request("GET", "/v2/health/ready")
        assert status == 503 and "no MLflow store" in json.loads(body)["reason"]
        status, answer = post_json(server, "/invocations", split_payload(ROWS.head(1)))
        assert status == 503 and "no model to score with" in answer["message"]
        assert not (tmp_path / "none").exists()  # asking created no empty store
    finally:
        stop(server.process)


def test_past_the_queue_it_answers_503_at_once_and_probes_stay_answered(store, tmp_path):
    env = serve_env(tmp_path, store.tracking_uri, AFFLUENT_SERVE_WORKERS="1",
                    AFFLUENT_SERVE_QUEUE="0", AFFLUENT_SERVE_MAX_ROWS="20000",
                    AFFLUENT_SERVE_MAX_BODY_BYTES="100000000")  # fmt: skip
    server = AffluentServe(env).wait()
    try:
        server.wait_ready()
        big = json.dumps(split_payload(generate_customers(8000, seed=3).drop(
            columns=["C_seg"]))).encode()  # fmt: skip
        statuses, probes = [], []

        def call():
            statuses.append(post_json(server, "/invocations", big)[0])

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            probes.append(server.request("GET", "/v2/health/live")[0])
            time.sleep(0.05)
        for thread in threads:
            thread.join()
        assert 200 in statuses and 503 in statuses
        assert probes and set(probes) == {200}
    finally:
        stop(server.process)


def test_a_promotion_under_load_answers_with_the_new_version_and_fails_nothing(tmp_path):
    store = register_tiny_model(tmp_path / "swap")
    server = AffluentServe(serve_env(tmp_path / "serve", store.tracking_uri)).wait()
    answers: list[tuple[float, int, set]] = []
    stop_sending = threading.Event()

    def send():
        while not stop_sending.is_set():
            status, answer = post_json(server, "/invocations", split_payload(ROWS.head(20)))
            versions = {p["model_version"] for p in answer.get("predictions", [])}
            answers.append((time.monotonic(), status, versions))

    try:
        server.wait_ready()
        senders = [threading.Thread(target=send) for _ in range(3)]
        for sender in senders:
            sender.start()
        time.sleep(1)
        second = register_tiny_model(tmp_path / "swap", store.tracking_uri)  # sets the alias
        promoted = time.monotonic()
        deadline = promoted + 10
        while time.monotonic() < deadline:
            if any(t > promoted and v == {second.model.version} for t, _, v in answers):
                break
            time.sleep(0.1)
        time.sleep(0.5)
        stop_sending.set()
        for sender in senders:
            sender.join()
    finally:
        stop(server.process)
    assert all(status == 200 for _, status, _ in answers)
    assert all(len(versions) == 1 for _, _, versions in answers)  # never two in one answer
    first_new = min(t for t, _, v in answers if v == {second.model.version})
    assert first_new - promoted < 10
    assert {store.model.version} in [v for t, _, v in answers if t < promoted]


def test_an_answer_equals_the_landed_batch_for_the_same_rows(server, store, tmp_path):
    """The same customers landed as a file (a real landing run, read back from the lake) and
    asked over HTTP: the same probabilities, flags and, for the batch's candidates, reasons."""
    rows = generate_customers(300, seed=23).drop(columns=["C_seg"])
    stores = LandingStores(
        landing=tmp_path / "landing", quarantine=tmp_path / "quarantine",
        warehouse=tmp_path / "warehouse.duckdb", lake=tmp_path / "lake", models=store,
        instance=dg.DagsterInstance.ephemeral(),
    )  # fmt: skip
    stores.landing.mkdir()
    rows.to_csv(stores.landing / "branch.csv", index=False)
    assert stores.run("branch.csv").success
    landed = pd.read_parquet(lake.batch_file(stores.lake, lake.SCORES, "branch.csv"))
    listed = pd.read_parquet(lake.batch_file(stores.lake, lake.CANDIDATES, "branch.csv"))
    status, answer = post_json(server, "/invocations", split_payload(rows))
    assert status == 200
    answered = pd.DataFrame(answer["predictions"]).assign(source_row=np.arange(1, 301))
    merged = answered.merge(landed, on="source_row", suffixes=("", "_batch"))
    assert len(merged) == 300
    np.testing.assert_allclose(
        merged["affluent_probability"], merged["affluent_probability_batch"], rtol=0, atol=1e-9
    )
    assert (merged["predicted_segment"] == merged["predicted_segment_batch"]).all()
    candidates = answered.merge(listed, on="source_row", suffixes=("", "_batch"))
    assert len(candidates) == len(listed) > 0
    for column in REASON_COLUMNS:
        assert candidates[column].fillna("").tolist() == (
            candidates[f"{column}_batch"].fillna("").tolist()
        )
