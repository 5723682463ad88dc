"""Figures of an outcomes run on the default demo data, both ways back from a campaign.

    make run                                    # the champion, trained on the demo extract
    .venv/bin/python benchmarks/outcomes_demo.py [--rows 20000]

1. A fresh demo extract of `--rows` customers (a seed the champion never saw) stands for the
   bank's customers after a campaign: its `C_seg` is what happened.
2. Labelled: the file, with `C_seg`, is scored with `affluent score` (landing assets and checks).
3. Outcome file: the same customers without `C_seg` are scored as a second batch; its ranked list
   (as the upload page hands it out, with its control group held back) is given back for the top
   `--called` ranks: `upgraded` = the customer is AFFLUENT, and, for the called only, a simulated
   campaign effect: a NORMAL customer who was called upgrades with probability `--effect`.
4. `model_outcomes` reads both: realized against estimated (the scores' own) and expected
   (holdout) precision, and the uplift of the called over the control group.
5. Coverage: `--batches` seeded demo batches of each `--sizes` scored in process with the same
   champion; how often the 90% interval of estimated precision at the threshold covers the
   realized precision.
6. Shifted batches: `--batches` seeded subpopulations (a branch whose customers lean to more or
   fewer products, higher or lower balances, older or younger: selection on what the model sees,
   so calibration holds) and, for contrast, label-shifted ones (AFFLUENT share changed: the
   model is then mis-calibrated for them); mean absolute error of the estimate and of the
   holdout figure against realized precision.

The champion and MLflow store are the repository's (`make run`); landing folder, lake, warehouse
copy, outcomes folder and Dagster instance are temporary. Results:
benchmarks/results/outcomes_demo.json.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from report import write_report  # noqa: E402

AFFLUENT = Path(sys.executable).with_name("affluent")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def score(path: Path, env: dict) -> None:
    command = [str(AFFLUENT), "score", str(path), "--no-progress", "--top", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    print(done.stdout.strip(), file=sys.stderr)
    if done.returncode != 0:
        raise SystemExit(f"affluent score {path.name} failed: {done.stderr}")


def campaign_file(work: Path, labels, called: int, effect: float, seed: int) -> float:
    """The second batch's list, top `called` ranks (called and control), given back with
    `upgraded`: AFFLUENT, or for the called only, converted by the call with `effect`. Returns
    the uplift the simulation put in."""
    import duckdb
    import numpy as np

    with duckdb.connect() as con:
        listed = con.execute(
            f"""select batch_key, customer_key, model_version, "group", affluent_probability
            from read_parquet('{work}/lake/batch_candidates/*.parquet')
            where batch_key = 'campaign.csv'
            order by affluent_probability desc limit {called}"""
        ).df()
    outcome = labels.set_index("customer_key").loc[listed["customer_key"], "C_seg"].to_numpy()
    converted = (listed["group"] == "campaign") & (
        np.random.default_rng(seed).random(called) < effect
    )
    upgraded = (outcome == "AFFLUENT") | converted.to_numpy()
    listed["upgraded"] = np.where(upgraded, "yes", "no")
    path = work / "outcomes" / "campaign-results.csv"
    listed.drop(columns=["affluent_probability", "group"]).to_csv(path, index=False)
    # The effect the simulation put in: the called who upgraded only because they were called.
    campaign = (listed["group"] == "campaign").to_numpy()
    return float((converted.to_numpy() & (outcome != "AFFLUENT"))[campaign].mean())


def outcomes_table(work: Path):
    import dagster as dg
    import duckdb
    from dagster_duckdb import DuckDBResource

    from affluent_assets.defs.monitoring.outcomes import model_outcomes
    from affluent_assets.defs.resources import MlflowModels

    result = dg.materialize(
        [model_outcomes],
        resources={
            "duckdb": DuckDBResource(database=str(work / "warehouse.duckdb")),
            "mlflow_models": MlflowModels(),
            "io_manager": dg.mem_io_manager,
        },
        run_config={
            "ops": {"model_outcomes": {"config": {"outcomes_dir": str(work / "outcomes")}}}
        },
    )
    checks = {c.check_name: c.description for c in result.get_asset_check_evaluations()}
    with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as con:
        uplift = con.execute("select * from campaign_uplift").df()
    return result.output_for_node("model_outcomes"), checks, uplift


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--called", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--effect", type=float, default=0.10)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 5_000, 20_000])
    parser.add_argument("--shifted-rows", type=int, default=5_000)
    args = parser.parse_args()

    from affluent_assets.lib.demo_data import generate_customers

    work = Path(tempfile.mkdtemp(prefix="affluent-outcomes-"))
    for folder in ("landing", "outcomes", "dagster_home"):
        (work / folder).mkdir()
    shutil.copy(REPO / "data" / "warehouse.duckdb", work / "warehouse.duckdb")
    env = {
        **os.environ,
        "AFFLUENT_LANDING": str(work / "landing"),
        "AFFLUENT_QUARANTINE": str(work / "quarantine"),
        "AFFLUENT_LAKE": str(work / "lake"),
        "AFFLUENT_WAREHOUSE": str(work / "warehouse.duckdb"),
        "DAGSTER_HOME": str(work / "dagster_home"),
    }
    customers = generate_customers(args.rows, seed=args.seed)
    customers.to_csv(work / "landing" / "labelled.csv", index=False)
    customers.drop(columns="C_seg").to_csv(work / "landing" / "campaign.csv", index=False)
    score(work / "landing" / "labelled.csv", env)
    score(work / "landing" / "campaign.csv", env)
    labels = customers.assign(
        customer_key=customers["C_ID"].astype(str) + "-" + (customers.index + 1).astype(str)
    )
    simulated_uplift = campaign_file(work, labels, args.called, args.effect, args.seed)
    table, checks, uplift = outcomes_table(work)
    shutil.rmtree(work)
    from simulated_batches import coverage, shifted

    scorer = champion()
    write_report(
        "outcomes_demo",
        {
            "rows": args.rows,
            "seed": args.seed,
            "called": args.called,
            "simulated_effect": args.effect,
            # share of the called converted by the call (NORMAL ones only): the true uplift
            "simulated_uplift": round(simulated_uplift, 4),
            "outcomes": records(table),
            "uplift": records(uplift),
            "checks": checks,
            "coverage": [coverage(scorer, size, args.batches) for size in args.sizes],
            "shifted": shifted(scorer, args.shifted_rows, args.batches),
        },
    )


def records(frame) -> list[dict]:
    return frame.round(4).astype(object).where(frame.notna(), None).to_dict("records")


def champion():
    from affluent_assets.defs.resources import MlflowModels
    from affluent_assets.lib.batch_scoring import ScoringModel

    models = MlflowModels()
    model = models.describe("champion")
    return ScoringModel(models.load(model), model, models.holdout_curve(model))


if __name__ == "__main__":
    main()
