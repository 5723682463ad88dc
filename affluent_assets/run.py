"""`python -m affluent_assets.run`: materialize every asset of the main job, then print the top
hidden affluent candidates from DuckDB. Used by `make run`."""

import argparse
import sys

import duckdb

from affluent_assets import settings
from affluent_assets.definitions import defs
from affluent_assets.instance import current_instance

TOP_CANDIDATES_SQL = """
select candidate_rank, customer_key, round(affluent_probability, 3) as score,
       round(expected_precision, 3) as expected_precision, reason_1, reason_2
from hidden_affluent_candidates order by candidate_rank limit ?
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--top", type=int, default=10, help="candidates to print")
    args = parser.parse_args(argv)
    result = defs.resolve_job_def("affluent_job").execute_in_process(
        instance=current_instance(), raise_on_error=False
    )
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(
                    f"step {event.step_key} failed: {event.step_failure_data.error.message}",
                    file=sys.stderr,
                )
        return 1
    with duckdb.connect(settings.warehouse_path(), read_only=True) as con:
        evaluation = dict(
            con.execute(
                "select metric, value from model_evaluation"
                " where metric in ('roc_auc', 'pr_auc', 'recall', 'precision', 'f1')"
            ).fetchall()
        )
        candidates = con.execute("select count(*) from hidden_affluent_candidates").fetchone()[0]
        top = con.execute(TOP_CANDIDATES_SQL, [args.top]).df()
    figures = ", ".join(f"{name} {value:.3f}" for name, value in evaluation.items())
    print(f"\nHoldout: {figures}")
    print(
        f"{candidates:,} hidden affluent candidates in {settings.warehouse_path()}; "
        f"top {len(top)}:\n"
    )
    print(top.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
