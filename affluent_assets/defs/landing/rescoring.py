"""Lists follow the champion: when a new champion is promoted, every landed batch scored with an
older model whose file is still in the landing folder is rescored with it (one run per batch,
through the same landing job and checks), so `latest_candidates` does not silently mix versions.
Batches whose file is gone keep their scores, and their lists say which model made them."""

from __future__ import annotations

import dagster as dg

from affluent_assets import settings
from affluent_assets.defs.landing.assets import landing_job
from affluent_assets.defs.landing.run import files_in_flight
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import lake, landing
from affluent_assets.lib.registry import CHAMPION_ALIAS
from affluent_assets.names import CHAMPION_VERSION_TAG, LANDING_FILE_TAG

RESCORE_TAG = "affluent/rescored_for_version"


def build_rescoring_sensor(
    name: str = "champion_rescoring_sensor", landing_dir: str | None = None,
    lake_dir: str | None = None,
) -> dg.SensorDefinition:  # fmt: skip
    @dg.sensor(
        name=name,
        target=landing_job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Rescores landed batches with the champion when it changes.",
    )
    def _sensor(context: dg.SensorEvaluationContext, mlflow_models: MlflowModels):
        champion = mlflow_models.describe(CHAMPION_ALIAS)
        if champion is None:
            return dg.SkipReason("no champion yet")
        folder = landing_dir or settings.landing_dir()
        stale = {
            key: version
            for key, version in lake.batch_model_versions(lake_dir or settings.lake_dir()).items()
            if version != str(champion.version)
        }
        requests, orphaned, waiting = [], [], []
        busy = files_in_flight(context.instance) if stale else set()
        for key in sorted(stale):
            path = landing.find_batch_file(folder, key)
            if path is None:
                orphaned.append(key)
                continue
            if path.name in busy:  # asked again once that run has written what it scored
                waiting.append(key)
                continue
            requests.append(_rescore(key, path.name, folder, str(champion.version)))
        note = (
            f"; {len(orphaned)} batch(es) scored with an older model have no file left to "
            f"rescore ({', '.join(orphaned[:5])})"
            if orphaned
            else ""
        )
        if waiting:
            note += f"; {len(waiting)} wait for a run of their file ({', '.join(waiting[:5])})"
        if not requests:
            current = f"v{champion.version}"
            if waiting:
                return dg.SkipReason(f"nothing to rescore with {current} now{note}")
            return dg.SkipReason(f"every batch with a file is scored with {current}{note}")
        context.log.info(f"rescoring {len(requests)} batch(es) with v{champion.version}{note}")
        return dg.SensorResult(run_requests=requests)

    return _sensor


def _rescore(key: str, name: str, folder: str, version: str) -> dg.RunRequest:
    config = {"landing_dir": str(folder), "files": {key: name}}
    return dg.RunRequest(
        run_key=f"{key}:rescore:v{version}",
        partition_key=key,
        run_config={"ops": {"batch_scores": {"config": config}}},
        tags={LANDING_FILE_TAG: name, RESCORE_TAG: version, CHAMPION_VERSION_TAG: version},
    )


champion_rescoring_sensor = build_rescoring_sensor()
