"""Lists follow the champion: after a new champion is promoted, the rescoring sensor asks for one
run per landed batch scored with an older model whose file is still there; that run rescores it
with the new champion; a batch whose file is gone is named, not rescored."""

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id

from affluent_assets.defs.landing.rescoring import RESCORE_TAG, build_rescoring_sensor
from affluent_assets.lib import lake
from affluent_assets.names import CHAMPION_VERSION_TAG, LANDING_FILE_TAG
from affluent_assets_tests.defs.conftest import register_tiny_model
from affluent_assets_tests.defs.test_landing_runs import land


def tick(sensor, stores):
    context = dg.build_sensor_context(
        instance=stores.instance, resources={"mlflow_models": stores.models.resource()}
    )
    return sensor(context)


def test_a_new_champion_rescores_the_batches_still_in_the_landing_folder(landing_stores, tmp_path):
    stores = landing_stores
    stores.models = register_tiny_model(tmp_path / "models")  # v1, champion
    sensor = build_rescoring_sensor(
        "test_rescoring", landing_dir=str(stores.landing), lake_dir=str(stores.lake)
    )
    for seed, name in enumerate(("kept.csv", "gone.csv")):
        land(stores, name, seed=40 + seed)
        assert stores.run(name).success
    assert isinstance(tick(sensor, stores), dg.SkipReason)  # all scored with the champion

    stores.models = register_tiny_model(tmp_path / "models")  # v2 becomes champion
    (stores.landing / "gone.csv").unlink()
    result = tick(sensor, stores)
    [request] = result.run_requests
    assert request.partition_key == "kept.csv" and request.tags[RESCORE_TAG] == "2"
    assert request.run_key == "kept.csv:rescore:v2"

    assert stores.run("kept.csv").success  # the run the request starts
    assert lake.batch_model_versions(stores.lake) == {"kept.csv": "2", "gone.csv": "1"}
    skipped = tick(sensor, stores)
    assert "no file left to rescore (gone.csv)" in skipped.skip_message


def test_a_batch_whose_file_has_a_run_in_flight_waits_for_it(landing_stores, tmp_path):
    """That run scores with the version its sensor named, maybe the one before the promotion;
    a rescore asked for meanwhile could finish first and be overwritten for good."""
    stores = landing_stores
    stores.models = register_tiny_model(tmp_path / "models")  # v1, champion
    sensor = build_rescoring_sensor(
        "test_rescoring", landing_dir=str(stores.landing), lake_dir=str(stores.lake)
    )
    land(stores, "busy.csv", seed=50)
    assert stores.run("busy.csv").success
    stores.models = register_tiny_model(tmp_path / "models")  # v2 becomes champion
    in_flight = DagsterRun(
        job_name="landing_job", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
        tags={LANDING_FILE_TAG: "busy.csv", CHAMPION_VERSION_TAG: "1"},
    )  # fmt: skip
    stores.instance.add_run(in_flight)
    skipped = tick(sensor, stores)
    assert isinstance(skipped, dg.SkipReason)
    assert "1 wait for a run of their file (busy.csv)" in skipped.skip_message

    stores.instance.report_run_canceled(in_flight)
    [request] = tick(sensor, stores).run_requests
    assert request.partition_key == "busy.csv" and request.tags[CHAMPION_VERSION_TAG] == "2"
