"""What the API says about a batch after real landing runs on the Dagster instance the server
reads (`affluent serve` in its own process group): a file rejected and then fixed under its
name is scored, a file whose content was scored before gets the list of the batch holding its
rows, and a batch's data-quality warnings are shown."""

import json
import os

import dagster as dg
import pytest

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.demo_files import write_extract
from affluent_assets.lib.landing import batch_key_for
from affluent_assets.names import LANDING_FILE_TAG
from affluent_assets_tests.defs.conftest import landing_stores, model_store  # noqa: F401
from affluent_assets_tests.servers import AffluentServe, stop


@pytest.fixture
def served(landing_stores, tmp_path):  # noqa: F811
    home = tmp_path / "home"
    home.mkdir()
    landing_stores.instance = dg.DagsterInstance.from_config(str(home))
    env = {
        **os.environ,
        "AFFLUENT_LANDING": str(landing_stores.landing),
        "AFFLUENT_QUARANTINE": str(landing_stores.quarantine),
        "AFFLUENT_LAKE": str(landing_stores.lake),
        "DAGSTER_HOME": str(home),
    }
    server = AffluentServe(env).wait()
    yield landing_stores, server
    stop(server.process)


def state(server, key: str) -> dict:
    status, body = server.request("GET", f"/api/batches/{key}")
    assert status == 200, body
    return json.loads(body)


def score(stores, name: str):
    """The landing run the sensor would request for the file, on the server's instance."""
    return stores.run(batch_key_for(name), tags={LANDING_FILE_TAG: name})


def good_frame(rows=200, seed=51):
    frame = generate_customers(rows, seed=seed).drop(columns="C_seg")
    frame.loc[4, "CC_LMT"] = 999_999.0  # outside the documented range: a warning
    return frame


def test_a_fixed_file_is_scored_and_a_copy_gets_the_list_of_its_batch(served):
    stores, server = served
    bad = good_frame()
    bad["C_AGE"] = bad["C_AGE"].astype(object)
    bad.loc[2, "C_AGE"] = "forty"
    write_extract(bad, stores.landing / "branch.csv")
    assert not score(stores, "branch.csv").success
    rejected = state(server, "branch.csv")
    assert rejected["status"] == "quarantined"
    assert rejected["reason"].startswith("branch.csv: breaks the data contract — column 'C_AGE'")

    write_extract(good_frame(), stores.landing / "branch.csv")  # fixed, same name
    assert score(stores, "branch.csv").success
    fixed = state(server, "branch.csv")
    assert (fixed["status"], fixed["reason"], fixed["rows"]) == ("scored", None, 200)
    assert fixed["candidates"] > 0 and fixed["same_content_as"] is None
    assert fixed["warnings"] == [
        "1 × CC_LMT outside the contract's range 0 to 380,000 (e.g. 999999)"
    ]

    (stores.landing / "colleague.csv").write_bytes((stores.landing / "branch.csv").read_bytes())
    assert score(stores, "colleague.csv").success
    copy = state(server, "colleague.csv")
    assert copy["status"] == "scored" and copy["same_content_as"] == "branch.csv"
    assert copy["reason"] == "same content as batch 'branch.csv', already scored: its list is shown"
    assert (copy["rows"], copy["candidates"], copy["model_version"]) == (
        fixed["rows"], fixed["candidates"], fixed["model_version"],
    )  # fmt: skip
    assert copy["warnings"] == fixed["warnings"]
    status, body = server.request("GET", "/api/batches/colleague.csv/candidates.json")
    listed = json.loads(body)
    assert status == 200 and listed["batch"] == "branch.csv"
    assert len(listed["top"]) == min(25, fixed["candidates"])
    status, body = server.request("GET", "/api/batches/colleague.csv/candidates.csv")
    assert status == 200 and len(body.decode().splitlines()) == fixed["candidates"] + 1

    # branch.csv lands again with other content: the batch says what it replaced, and the copy
    # no longer claims a list that is not its content's.
    write_extract(good_frame(rows=90, seed=52), stores.landing / "branch.csv")
    assert score(stores, "branch.csv").success
    again = state(server, "branch.csv")
    assert again["rows"] == 90 and again["reason"].startswith(
        "replaces batch 'branch.csv': its 200 rows of different content (sha256 "
    ), again
    stale = state(server, "colleague.csv")
    assert stale["same_content_as"] is None and stale["rows"] is None
    assert stale["reason"] == (
        "same content as batch 'branch.csv' when it was scored, but that batch has since been "
        "replaced by other content: hand in the file again to score it"
    )
    assert server.request("GET", "/api/batches/colleague.csv/candidates.csv")[0] == 404


def test_what_the_batch_api_does_not_know_has_no_list_either(served):
    stores, server = served
    write_extract(good_frame(), stores.landing / "first.csv")
    assert score(stores, "first.csv").success  # the lake now holds its `_empty` placeholders
    assert (stores.lake / "batch_candidates" / "_empty.parquet").exists()
    for path in ("/api/batches/_empty", "/api/batches/_empty/candidates.csv",
                 "/api/batches/nothing.csv/candidates.json"):  # fmt: skip
        status, body = server.request("GET", path)
        assert status == 404 and b"no batch" in body, (path, body)
