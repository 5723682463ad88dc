"""`affluent score PATH`: score one file through the landing assets and checks, in this process,
recorded in the Dagster instance (the run shows in the UI when DAGSTER_HOME is set, as `make`
sets it), with a progress bar on a terminal; then print the batch and its top candidates.

Exit codes: 0 scored (or the same content was already scored), 1 the file was rejected and
quarantined (the message says why), 2 the command could not run (no such file, no model).

`affluent serve [--host H] [--port P]`: the upload page and its API (default 127.0.0.1:3001;
any other address needs AFFLUENT_API_TOKEN).

`affluent approve VERSION [--by NAME]`: a model version waiting for approval becomes champion.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from affluent_assets.names import CHAMPION_VERSION_TAG, LANDING_FILE_TAG, QUALITY_CHECK

EXIT_REJECTED = 1
EXIT_ERROR = 2

TOP_SQL = """
select row_number() over (order by affluent_probability desc, customer_key) as rank,
       customer_key, round(affluent_probability, 3) as score,
       round(expected_precision, 3) as expected_precision, reason_1, reason_2, reason_3
from read_parquet(?) order by rank limit ?
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="affluent", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="score one ETB file (.csv, .xlsx, .parquet)")
    score.add_argument("path", type=Path, help="the file to score")
    score.add_argument("--chunk-rows", type=int, default=None, help="rows read at a time")
    score.add_argument("--top", type=int, default=10, help="candidates to print")
    score.add_argument("--report-json", type=Path, help="also write the figures as JSON here")
    score.add_argument("--no-progress", action="store_true", help="no progress bar")
    approve = commands.add_parser("approve", help="make a version waiting for approval champion")
    approve.add_argument("version", help="the registered version number")
    approve.add_argument("--by", default=os.environ.get("USER", "unknown"), help="who approves")
    serve = commands.add_parser("serve", help="the upload page and scoring API")
    serve.add_argument("--host", default=os.environ.get("AFFLUENT_WEB_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("AFFLUENT_WEB_PORT", 3001)))
    serve.add_argument(
        "--max-upload-bytes",
        type=int,
        default=int(os.environ.get("AFFLUENT_MAX_UPLOAD_BYTES", 2 * 1024**3)),
    )
    return parser


class _ProgressBars:
    """tqdm bars per phase: rows done and rows per second."""

    LABELS = {"score": "scoring", "explain": "explaining candidates"}

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bars: dict = {}

    def __call__(self, phase: str, rows: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(phase)
        if bar is None:
            bar = self.bars[phase] = tqdm(
                desc=self.LABELS.get(phase, phase), unit=" rows", unit_scale=True, file=sys.stderr
            )
        bar.update(rows - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _champion_version() -> str | None:
    """The version the champion alias holds now, asked before the run as the landing sensor
    asks it: the run then scores with that version from the local cache, without loading
    MLflow's client (over a second). None when the registry cannot say: the run asks it
    itself, and says why it cannot score."""
    from affluent_assets import settings
    from affluent_assets.defs.resources import MlflowModels
    from affluent_assets.lib.registry import CHAMPION_ALIAS

    try:  # the store as configured now, as `affluent approve` reads it
        model = MlflowModels(tracking_uri=settings.mlflow_tracking_uri()).describe(CHAMPION_ALIAS)
    except Exception:  # unreachable or unreadable: the run reports it
        return None
    return None if model is None else str(model.version)


def score(args: argparse.Namespace) -> int:
    # Imported here so `affluent --help` answers at once.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    from affluent_assets import settings
    from affluent_assets.definitions import defs
    from affluent_assets.defs.landing.assets import landed_batches
    from affluent_assets.instance import current_instance
    from affluent_assets.lib import landing

    path = args.path.resolve()
    if not path.is_file():
        print(f"affluent score: {args.path}: no such file", file=sys.stderr)
        return EXIT_ERROR
    if not landing.is_landing_name(path.name):
        print(
            f"affluent score: {path.name}: not a landing file (expected "
            f"{', '.join(landing.LANDING_SUFFIXES)}, not hidden)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    key = landing.batch_key_for_path(path, settings.landing_dir())
    instance = current_instance()
    instance.add_dynamic_partitions(landed_batches.name, [key])
    config = {"landing_dir": str(path.parent), "file_name": path.name}
    if args.chunk_rows:
        config["chunk_rows"] = args.chunk_rows
    tags = {LANDING_FILE_TAG: path.name, "affluent/launched_by": "affluent score"}
    version = _champion_version()
    if version is not None:
        tags[CHAMPION_VERSION_TAG] = version
    bars = _ProgressBars(sys.stderr.isatty() and not args.no_progress)
    started = time.perf_counter()
    try:
        result = defs.resolve_job_def("landing_job").execute_in_process(
            run_config={
                "ops": {"batch_scores": {"config": config}},
                # The run's events go to the instance (and the UI); the terminal shows the bar and,
                # for a rejected file, the one message that says why.
                "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
            },
            instance=instance,
            partition_key=key,
            raise_on_error=False,
            tags=tags,
            resources={"scoring_progress": bars},
        )
    finally:
        bars.close()
    seconds = time.perf_counter() - started
    if not result.success:
        return _report_failure(result)
    return _report_scored(result, path.name, key, seconds, args)


def _report_scored(result, name: str, key: str, seconds: float, args) -> int:
    """What a successful run did, for the person at the terminal: the batch holding the rows
    of content scored before, what a new version replaced, the figures, the warnings."""
    from affluent_assets import settings
    from affluent_assets.lib import lake

    scores = _materialization(result, "batch_scores")
    candidates = _materialization(result, "batch_candidates") or {}
    if scores is None:  # same content already scored: the run says under which batch
        holder = _observation(result).get("duplicate_of", "another batch")
        print(
            f"{name}: same content already scored as batch {holder!r}; no rows added. "
            f"Its list: {lake.batch_file(settings.lake_dir(), lake.CANDIDATES, holder)} "
            f"(run {result.run_id})"
        )
        return 0
    if "replaced" in scores:
        print(f"{name}: {scores['replaced']}")
    figures = {
        "batch_key": key,
        "run_id": result.run_id,
        "rows": scores["dagster/row_count"],
        "candidates": scores["candidates"],
        "model_version": scores["model_version"],
        "seconds": seconds,
        # Inside the run: until the scores were queryable, and until the list with reasons was.
        "seconds_scores_queryable": scores["seconds_to_queryable"],
        "seconds_candidates_queryable": candidates.get("seconds_to_queryable"),
        "stages": candidates.get("seconds", scores["seconds"]),
    }
    candidates_file = lake.batch_file(settings.lake_dir(), lake.CANDIDATES, key)
    _print_summary(figures, candidates_file, args.top)
    for line in _quality_warnings(result):
        print(f"warning: {line}", file=sys.stderr)
    if args.report_json:
        args.report_json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _materialization(result, asset: str) -> dict | None:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return {name: value.value for name, value in materialization.metadata.items()}
    return None


def _observation(result) -> dict:
    for event in result.all_events:
        if event.event_type_value == "ASSET_OBSERVATION":
            observation = event.asset_observation_data.asset_observation
            return {name: value.value for name, value in observation.metadata.items()}
    return {}


def _quality_warnings(result) -> list[str]:
    """The data-quality check's warnings, in words (the rows were scored all the same)."""
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.check_name == QUALITY_CHECK and "warnings" in evaluation.metadata:
            return list(evaluation.metadata["warnings"].value)
    return []


def _report_failure(result) -> int:
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            message = (
                data.user_failure_data.description
                if data.user_failure_data is not None
                else data.error.message
            )
            print(message, file=sys.stderr)
            failed = (
                data.user_failure_data.metadata.get("failed_batches")
                if data.user_failure_data is not None
                else None
            )
            quarantined = failed is not None and any(
                f["quarantined_as"] for f in failed.value.values()
            )
            return EXIT_REJECTED if quarantined else EXIT_ERROR
    print(f"the run failed (run {result.run_id})", file=sys.stderr)
    return EXIT_ERROR


def _print_summary(figures: dict, candidates_file: Path, top: int) -> None:
    import duckdb

    rate = figures["rows"] / max(figures["seconds"], 1e-9)
    print(
        f"batch {figures['batch_key']}: {figures['rows']:,} rows scored with model "
        f"v{figures['model_version']} in {figures['seconds']:.1f} s ({rate:,.0f} rows/s); "
        f"{figures['candidates']:,} candidates (run {figures['run_id']})"
    )
    if top > 0 and figures["candidates"]:
        with duckdb.connect() as con:
            table = con.execute(TOP_SQL, [str(candidates_file), top]).df()
        print(table.to_string(index=False))


def serve(args: argparse.Namespace) -> int:
    """The upload page and API. Bound to loopback unless told; anywhere else needs a token."""
    import ipaddress

    token = os.environ.get("AFFLUENT_API_TOKEN") or None
    try:
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and token is None:
        print(
            f"affluent serve: refusing to listen on {args.host} without a token: set "
            "AFFLUENT_API_TOKEN (clients send it as 'Authorization: Bearer <token>')",
            file=sys.stderr,
        )
        return EXIT_ERROR
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import uvicorn

    from affluent_assets.lib import telemetry
    from affluent_assets.web.app import WebSettings, create_app

    settings = WebSettings.from_environment(token, args.max_upload_bytes)
    print(
        f"upload page on http://{args.host}:{args.port}/ (API: /api/openapi.json); scoring on "
        f"/invocations and /v2/models/{settings.inference.model_name}/infer"
    )
    # With telemetry on, uvicorn's loggers reach the root handler, whose lines carry trace ids.
    logs = {"log_config": None} if telemetry.active() else {}
    if logs:
        telemetry.log_to_stderr(logging.WARNING)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning", **logs)
    return 0


def approve(args: argparse.Namespace) -> int:
    """`affluent approve VERSION`: the version (which passed every promotion gate and waits,
    see champion_model's `require_approval`) becomes the champion. It runs the Launchpad's
    `model_approval_job`, in this process: the same step, recorded in the instance and on
    `champion_model` the same way."""
    from affluent_assets import settings
    from affluent_assets.defs.model.approval import model_approval_job
    from affluent_assets.defs.resources import MlflowModels
    from affluent_assets.instance import current_instance

    # The store as configured now (the resource's defaults are read when it is imported).
    models = MlflowModels(tracking_uri=settings.mlflow_tracking_uri())
    result = model_approval_job.execute_in_process(
        run_config={
            "ops": {"approve_model_version": {"config": {"version": args.version,
                                                         "approved_by": args.by}}},
            "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
        },
        instance=current_instance(),
        resources={"mlflow_models": models},
        raise_on_error=False,
        tags={"affluent/launched_by": "affluent approve"},
    )  # fmt: skip
    if not result.success:
        failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
        message = failure.user_failure_data.description if failure.user_failure_data else None
        print(f"affluent approve: {message or failure.error.message}", file=sys.stderr)
        return EXIT_ERROR
    model_name = result.output_for_node("approve_model_version")
    print(f"{model_name} v{args.version} is the champion (approved by {args.by})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from affluent_assets.lib import telemetry

    # Before anything imports the code location, whose own setup then does nothing.
    telemetry.setup(f"affluent-{args.command}")
    commands = {"serve": serve, "approve": approve, "score": score}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
