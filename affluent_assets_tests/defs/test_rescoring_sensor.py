"""Lists follow the champion: after a new champion is promoted, the rescoring sensor asks for one
run per landed batch scored with an older model whose file is still there; that run rescores it
with the new champion; a batch whose file is gone is named, not rescored."""

import dagster as dg

from affluent_assets.defs.landing.rescoring import RESCORE_TAG, build_rescoring_sensor
from affluent_assets.lib import lake
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
