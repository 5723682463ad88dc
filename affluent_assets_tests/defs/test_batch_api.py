"""A landed batch as the API gives it: the list with each customer's group, the estimates
table and the group counts, JSON-safe, and the CSV download with its `group` column. The app
in process over a real landing run's lake and instance."""

import csv
import io
import json

from starlette.testclient import TestClient

from affluent_assets.names import LANDING_FILE_TAG
from affluent_assets.web.app import WebSettings, create_app
from affluent_assets.web.batches import Folders
from affluent_assets_tests.defs.test_landing_runs import land


def test_the_api_gives_the_list_its_groups_and_its_estimates(landing_stores):
    stores = landing_stores
    land(stores, "aug.csv", rows=600, seed=78)
    # tagged as the landing sensor tags its runs: the API finds the batch by its runs
    assert stores.run("aug.csv", tags={LANDING_FILE_TAG: "aug.csv"}).success
    folders = Folders(str(stores.landing), str(stores.quarantine), str(stores.lake))
    client = TestClient(create_app(WebSettings(folders=folders), stores.instance))

    answer = client.get("/api/batches/aug.csv/candidates.json")
    assert answer.status_code == 200
    body = json.loads(answer.text)
    groups = body["groups"]
    assert groups["control"] == round(0.10 * (groups["campaign"] + groups["control"])) > 0
    assert {row["group"] for row in body["top"]} <= {"campaign", "control"}
    threshold = next(row for row in body["estimates"] if row["policy"] == "threshold")
    assert threshold["precision_low"] <= threshold["estimated_precision"]
    assert threshold["estimated_precision"] <= threshold["precision_high"]
    assert all(point["estimated_precision"] is not None for point in body["curve"])

    download = client.get("/api/batches/aug.csv/candidates.csv")
    listed = list(csv.DictReader(io.StringIO(download.text)))
    assert sum(row["group"] == "control" for row in listed) == groups["control"]
