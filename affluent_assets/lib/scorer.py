"""The one scorer: contract rows in, per row the calibrated probability, whether the champion's
threshold flags it, the precision a list cut there is likely to have, the three reasons and the
model version out.

Every path that scores calls it: the landing run's chunks (which explain only their candidates,
later, with `explain_rows`), `affluent score` (a landing run in process), the main graph's
`scored_customers` (with `score_prepared` on the features it already has) and the inference
service, so an answer over HTTP and a row of a batch can never differ. Dagster-free: a notebook
can call it with a champion from lib/champion.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from affluent_assets.lib import telemetry
from affluent_assets.lib.champion import ScoringModel
from affluent_assets.lib.evaluation import LIST_MIN_CALLED, HoldoutCurve
from affluent_assets.lib.features import clean_columns, feature_columns
from affluent_assets.lib.prepared import Columns, prepared_matrix
from affluent_assets.lib.reasons import TopReasons, reason_texts, top_reasons
from affluent_assets.lib.scoring import REASON_COUNT, feature_scores

REASON_COLUMNS = [f"reason_{i + 1}" for i in range(REASON_COUNT)]
# What a scored row says, in this order, wherever it is served.
SCORE_COLUMNS = [
    "affluent_probability",
    "flagged",
    "predicted_segment",
    "score_decile",
    "expected_precision",
    "expected_recall",
    *REASON_COLUMNS,
    "model_version",
]


@dataclass
class Stopwatch:
    """Seconds spent per stage, for metadata, the benchmarks' breakdowns and the service's
    timing headers."""

    seconds: dict[str, float] = field(default_factory=dict)
    # A landing run's stages are child spans of its run's span; a request's stages only go
    # on its one span as attributes, since a span per stage would cost more than a row does.
    traced: bool = False

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            with telemetry.span(f"stage {name}") if self.traced else nullcontext():
                yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


@dataclass(frozen=True)
class ScoredRows:
    """One scoring call: the cleaned rows and features it was built from, and its scores (one
    row each, `customer_key` first, then SCORE_COLUMNS; without the explained columns when
    `explain` was False)."""

    clean: pd.DataFrame
    features: pd.DataFrame
    scores: pd.DataFrame


@dataclass(frozen=True)
class ScoredColumns:
    """`ScoredRows` as NumPy columns: what a request's answer is written from."""

    clean: dict[str, np.ndarray]
    features: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]


def score_rows(
    scorer: ScoringModel,
    valid: pd.DataFrame,
    source: str,
    first_row: int = 1,
    explain: bool = True,
    clock: Stopwatch | None = None,
) -> ScoredRows:
    """Score contract rows that passed the contract check (lib/validation.validate_frame): clean
    and featurize them with the training code, then `score_prepared`. `first_row` numbers the
    rows in their file (`customer_key` is `<C_ID>-<row>`)."""
    scored = score_columns(scorer, valid, source, first_row, explain, clock)
    return ScoredRows(
        pd.DataFrame(scored.clean, copy=False),
        pd.DataFrame(scored.features, copy=False),
        pd.DataFrame(scored.scores, copy=False),
    )


def score_columns(
    scorer: ScoringModel,
    valid: Columns,
    source: str,
    first_row: int = 1,
    explain: bool = True,
    clock: Stopwatch | None = None,
) -> ScoredColumns:
    """`score_rows` on columns: a checked frame or a dict of checked columns (a request's rows,
    lib/quick_check.checked_columns). Both paths run this, so they cannot differ; a request
    just never pays for building frames."""
    clock = clock if clock is not None else Stopwatch()
    with clock.stage("clean"):
        clean = clean_columns(valid, source, first_row)
    with clock.stage("features"):
        features = feature_columns(clean)
    return ScoredColumns(clean, features, score_feature_columns(scorer, features, explain, clock))


def score_prepared(
    scorer: ScoringModel,
    features: pd.DataFrame,
    explain: bool = True,
    clock: Stopwatch | None = None,
) -> pd.DataFrame:
    """Scores of feature rows (lib/features.build_features): probability, flagged at the
    champion's threshold, predicted segment, decile and version; with `explain`, also the
    expected precision and recall and the reasons (`explain_rows`)."""
    return pd.DataFrame(score_feature_columns(scorer, features, explain, clock), copy=False)


def score_feature_columns(
    scorer: ScoringModel,
    features: Columns,
    explain: bool = True,
    clock: Stopwatch | None = None,
) -> dict[str, np.ndarray]:
    """`score_prepared` as NumPy columns, from a feature frame or a dict of its columns."""
    clock = clock if clock is not None else Stopwatch()
    model = scorer.registered
    with clock.stage("predict"):
        # Explained rows need the prepared matrix twice: build it once.
        matrix = prepared_matrix(scorer.model.pipeline, features, "float64") if explain else None
        scored = feature_scores(scorer.model, features, model.threshold, model.decile_edges,
                                matrix)  # fmt: skip
    flagged = scored["affluent_probability"] >= model.threshold  # the segment's own rule
    scores = {"customer_key": scored["customer_key"],
              "affluent_probability": scored["affluent_probability"], "flagged": flagged,
              "score_decile": scored["score_decile"],
              "predicted_segment": scored["predicted_segment"]}  # fmt: skip
    if explain:
        scores |= explain_columns(scorer, features, scored["affluent_probability"], clock, matrix)
    scores["model_version"] = np.full(len(flagged), model.version, dtype=object)
    return scores


def explain_rows(
    scorer: ScoringModel,
    features: pd.DataFrame,
    probability: pd.Series,
    clock: Stopwatch | None = None,
    matrix: np.ndarray | None = None,
    reasons: TopReasons | None = None,
) -> pd.DataFrame:
    """For rows already scored: the expected precision and recall of calling everyone scored at
    or above each (the champion's holdout curve) and the three reasons behind each score
    (`matrix`: the rows' prepared matrix, float64, if built already; `reasons`: their numbers,
    if worked out already, lib/reasons.top_reasons)."""
    explained = explain_columns(scorer, features, probability, clock, matrix, reasons)
    index = probability.index if isinstance(probability, pd.Series) else None
    return pd.DataFrame(explained, index=index)


def explain_columns(
    scorer: ScoringModel,
    features: Columns,
    probability,
    clock: Stopwatch | None = None,
    matrix: np.ndarray | None = None,
    reasons: TopReasons | None = None,
) -> dict[str, np.ndarray | list]:
    """`explain_rows` as columns."""
    clock = clock if clock is not None else Stopwatch()
    with clock.stage("expected_precision"):
        expected = expected_figures(scorer.curve, probability)
    with clock.stage("reasons"):
        if reasons is None:
            reasons = top_reasons(scorer.model, features, matrix=matrix)
        texts = reason_texts(reasons, features)
    return expected | texts


def expected_figures(curve: HoldoutCurve | None, probability) -> dict[str, np.ndarray]:
    """`expected_precision` and `expected_recall` per score (NaN without a holdout curve), each
    over at least LIST_MIN_CALLED holdout customers: near the top of a list, where few holdout
    customers scored as high, the figure is the one the evidence supports, not 100%."""
    if curve is None:
        nan = np.full(len(probability), np.nan)
        return {"expected_precision": nan, "expected_recall": nan.copy()}
    return curve.figures(np.asarray(probability, dtype="float64"), min_called=LIST_MIN_CALLED)
