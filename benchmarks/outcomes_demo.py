"""Figures of an outcomes run on the default demo data, both ways back from a campaign.

    make run                                    # the champion, trained on the demo extract
    .venv/bin/python benchmarks/outcomes_demo.py [--rows 20000]

1. A fresh demo extract of `--rows` customers (a seed the champion never saw) stands for the
   bank's customers after a campaign: its `C_seg` is what happened.
2. Labelled: the file, with `C_seg`, is scored with `affluent score` (landing assets and checks).
3. Outcome file: the same customers without `C_seg` are scored as a second batch; its ranked list
   (as the upload page hands it out) is given back with `upgraded` = the customer is AFFLUENT,
   for the top `--called` customers, as a campaign that called them would.
4. `model_outcomes` reads both and compares with the holdout's precision.

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


def score(path: Path, env: dict) -> None:
    command = [str(AFFLUENT), "score", str(path), "--no-progress", "--top", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    print(done.stdout.strip(), file=sys.stderr)
    if done.returncode != 0:
        raise SystemExit(f"affluent score {path.name} failed: {done.stderr}")


def campaign_file(work: Path, labels, called: int) -> Path:
    """The second batch's list, top `called` customers, given back with `upgraded`."""
    import duckdb

    with duckdb.connect() as con:
        listed = con.execute(
            f"""select batch_key, customer_key, model_version, affluent_probability
            from read_parquet('{work}/lake/batch_scores/*.parquet')
            where batch_key = 'campaign.csv'
            order by affluent_probability desc limit {called}"""
        ).df()
    outcome = labels.set_index("customer_key").loc[listed["customer_key"], "C_seg"].to_numpy()
    listed["upgraded"] = ["yes" if seg == "AFFLUENT" else "no" for seg in outcome]
    path = work / "outcomes" / "campaign-results.csv"
    listed.drop(columns="affluent_probability").to_csv(path, index=False)
    return path


def outcomes_table(work: Path):
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from affluent_assets.defs.landing.outcomes import model_outcomes
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
    return result.output_for_node("model_outcomes"), checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--called", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=2026)
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
    campaign_file(work, labels, args.called)
    table, checks = outcomes_table(work)
    write_report(
        "outcomes_demo",
        {
            "rows": args.rows,
            "seed": args.seed,
            "called": args.called,
            "outcomes": table.round(4).astype(object).where(table.notna(), None).to_dict("records"),
            "checks": checks,
        },
    )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
