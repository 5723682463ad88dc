"""How precise a list will be, from its own calibrated scores, before any outcome comes back.

A calibrated score is the probability that the customer is AFFLUENT, so the number of AFFLUENT
among the customers called down to a cut is a sum of independent Bernoulli draws, one per
customer, with those probabilities: a Poisson-binomial count. Its mean over the count called is
the estimated precision; its 5% and 95% quantiles bound a 90% interval. Exact (dynamic
programming over the distribution) up to `EXACT_MAX` customers, a normal approximation above,
where the count's spread is wide enough for it. Recall likewise: the expected AFFLUENT called
over the expected AFFLUENT in the whole population (delta method for its interval).

This is what the scores promise if calibration holds for this population. Calibration itself
is only known as well as the holdout confirms it: at each cut the interval also carries the
holdout's own sampling error over the rows it has at or above that score, added in quadrature.
Without it the interval of a long list's top (a few hundred customers of many thousands, scores
above 0.8) was narrower than how well anyone knows the scores are right there, and covered 68
of 100 simulated batches. The holdout's figure is what the training population did at the same
cut; the two part when a batch's customers differ, and realized outcomes outside the interval
mean calibration broke for them.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from affluent_assets.lib.evaluation import (
    DEFAULT_CAPACITIES,
    HoldoutCurve,
    capacity_count,
    threshold_for_capacity,
)

LEVEL = 0.90
EXACT_MAX = 1000
ESTIMATE_COLUMNS = [
    "policy", "setting", "score_cut", "flagged", "estimated_precision", "precision_low",
    "precision_high", "estimated_recall", "recall_low", "recall_high", "holdout_precision",
    "holdout_recall",
]  # fmt: skip


def _growing(p: np.ndarray) -> Iterator[np.ndarray]:
    """The distribution of the sum of the first 1, 2, ... draws, one draw added at a time (n
    steps of an n-vector: fine for n <= EXACT_MAX). Each yielded view holds k = 0..i."""
    pmf = np.zeros(len(p) + 1)
    pmf[0] = 1.0
    for i, q in enumerate(p, start=1):
        pmf[1 : i + 1] = pmf[1 : i + 1] * (1 - q) + pmf[:i] * q
        pmf[0] *= 1 - q
        yield pmf[: i + 1]


def poisson_binomial(probabilities) -> np.ndarray:
    """P(k of the draws succeed) for k = 0..n: the distribution of a sum of independent
    Bernoullis with these probabilities."""
    last = deque(_growing(np.asarray(probabilities, dtype="float64")), maxlen=1)
    return last[0].copy() if last else np.ones(1)  # no draws: a count of 0 for certain


def _quantiles(pmf: np.ndarray, level: float) -> tuple[int, int]:
    """The equal-tailed counts: realized counts fall inside [low, high] with at least `level`."""
    cdf = np.cumsum(pmf)
    tail = (1 - level) / 2
    low = int(np.searchsorted(cdf, tail - 1e-12))
    high = int(np.searchsorted(cdf, 1 - tail - 1e-12))
    return low, min(high, len(pmf) - 1)


def count_interval(probabilities, level: float = LEVEL) -> tuple[float, float]:
    """A `level` interval of how many of the draws succeed."""
    p = np.asarray(probabilities, dtype="float64")
    if len(p) <= EXACT_MAX:
        return tuple(float(k) for k in _quantiles(poisson_binomial(p), level))
    return moments_interval(len(p), float(p.sum()), float((p * (1 - p)).sum()), level)


def moments_interval(
    n: int, total: float, variance: float, level: float = LEVEL
) -> tuple[float, float]:
    """The normal approximation of a count of n draws with that mean and variance."""
    spread = _z(level) * np.sqrt(variance)
    return max(0.0, total - spread), min(float(n), total + spread)


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def calibration_spread(
    curve: HoldoutCurve | None, cuts, min_called: int = 1, level: float = LEVEL
) -> np.ndarray:
    """How far calibration may be off at each score cut, as a `level` half-width: the binomial
    error of the holdout's precision over the rows it reports on there (one AFFLUENT and one
    NORMAL added, so a top where every holdout row was AFFLUENT is not taken as certain).
    Zero without a curve: then nothing confirms calibration beyond the scores themselves."""
    cuts = np.atleast_1d(np.asarray(cuts, dtype="float64"))
    if curve is None:
        return np.zeros(len(cuts))
    called, caught = curve.support(cuts, min_called)
    rate = (caught + 1) / (called + 2)
    return _z(level) * np.sqrt(rate * (1 - rate) / np.maximum(called, 1))


def widened(estimate, low, high, spread) -> tuple[np.ndarray, np.ndarray]:
    """The interval with the calibration half-width added to each side in quadrature: the
    sampling bounds keep their shape (exact ones are not symmetric), within 0 and 1."""
    estimate, low, high = (np.asarray(v, dtype="float64") for v in (estimate, low, high))
    below = estimate - np.sqrt((estimate - low) ** 2 + spread**2)
    above = estimate + np.sqrt((high - estimate) ** 2 + spread**2)
    return np.maximum(0.0, below), np.minimum(1.0, above)


@dataclass(frozen=True)
class Estimate:
    called: int
    precision: float
    low: float
    high: float


def precision_estimate(probabilities, level: float = LEVEL) -> Estimate:
    """Estimated precision of calling these customers, with its `level` interval."""
    p = np.asarray(probabilities, dtype="float64")
    if len(p) == 0:
        return Estimate(0, np.nan, np.nan, np.nan)
    low, high = count_interval(p, level)
    return Estimate(len(p), float(p.mean()), low / len(p), high / len(p))


def recall_estimate(
    called: np.ndarray, not_called: np.ndarray, level: float = LEVEL
) -> tuple[float, float, float]:
    """Expected share of the population's AFFLUENT among the called, and a delta-method
    interval: called and not called are independent counts A and B, recall A / (A + B)."""
    a, b = float(called.sum()), float(not_called.sum())
    if a + b <= 0:
        return np.nan, np.nan, np.nan
    var_a = float((called * (1 - called)).sum())
    var_b = float((not_called * (1 - not_called)).sum())
    recall = a / (a + b)
    spread = _z(level) * np.sqrt((b**2 * var_a + a**2 * var_b) / (a + b) ** 4)
    return recall, max(0.0, recall - spread), min(1.0, recall + spread)


def list_cuts(
    scores: np.ndarray, threshold: float, capacities=DEFAULT_CAPACITIES
) -> list[tuple[str, str, float]]:
    """(policy, setting, score cut) for the model's threshold and each capacity, counted in
    the population the list is drawn from."""
    cuts = [("threshold", f"{threshold:.4f}", float(threshold))]
    for capacity in capacities:
        count = capacity_count(capacity, len(scores))
        cuts.append(("capacity", f"top {capacity}", threshold_for_capacity(scores, count)))
    return cuts


def list_estimates(
    scores,
    threshold: float,
    curve: HoldoutCurve | None,
    capacities=DEFAULT_CAPACITIES,
    min_called: int = 1,
) -> pd.DataFrame:
    """For the threshold and each capacity cut of this population's calibrated `scores`: how
    many are called, estimated precision and recall with their 90% intervals (precision's
    widened by the holdout's confirmation of calibration at that cut), and the holdout's
    figures at the same cut (NaN without a curve) over at least `min_called` holdout rows."""
    p = np.sort(np.asarray(scores, dtype="float64"))[::-1]
    rows = []
    for policy, setting, cut in list_cuts(p, threshold, capacities):
        called = int(np.searchsorted(-p, -cut, side="right"))
        estimate = precision_estimate(p[:called])
        recall = recall_estimate(p[:called], p[called:])
        rows.append((policy, setting, cut, called, estimate.precision, estimate.low,
                     estimate.high, *recall))  # fmt: skip
    table = pd.DataFrame(rows, columns=ESTIMATE_COLUMNS[:-2])
    spread = calibration_spread(curve, table["score_cut"].to_numpy(), min_called)
    table["precision_low"], table["precision_high"] = widened(
        table["estimated_precision"], table["precision_low"], table["precision_high"], spread
    )
    if curve is None:
        table["holdout_precision"] = table["holdout_recall"] = np.nan
    else:
        holdout = curve.at(table["score_cut"].to_numpy(), min_called=min_called)
        table["holdout_precision"] = holdout["expected_precision"].to_numpy()
        table["holdout_recall"] = holdout["expected_recall"].to_numpy()
    return table


@dataclass(frozen=True, eq=False)
class ListCurve:
    """A list's own estimate for every cut: for each customer, the estimated precision of
    calling everyone scored at or above them (the mean of those calibrated scores) with its
    interval, so the first rows of a list show what their scores support, not the few
    holdout customers who scored as high."""

    scores: np.ndarray  # descending
    low: np.ndarray  # interval of the precision of the first i + 1 rows
    high: np.ndarray
    means: np.ndarray

    @classmethod
    def from_scores(
        cls,
        scores,
        curve: HoldoutCurve | None = None,
        min_called: int = 1,
        level: float = LEVEL,
    ) -> ListCurve:
        """The list's curve; with the model's holdout `curve`, each interval also carries how
        well the holdout confirms calibration at that customer's score (`calibration_spread`)."""
        p = np.sort(np.asarray(scores, dtype="float64"))[::-1]
        n = np.arange(1, len(p) + 1)
        total, variance = np.cumsum(p), np.cumsum(p * (1 - p))
        spread = _z(level) * np.sqrt(variance)
        low = np.maximum(0.0, total - spread) / np.maximum(n, 1)
        high = np.minimum(n, total + spread) / np.maximum(n, 1)
        exact = min(len(p), EXACT_MAX)
        low[:exact], high[:exact] = _prefix_intervals(p[:exact], level)
        means = total / np.maximum(n, 1)
        if curve is not None:
            low, high = widened(means, low, high, calibration_spread(curve, p, min_called, level))
        return cls(p, low, high, means)

    @functools.cached_property
    def _ascending_keys(self) -> np.ndarray:
        return -self.scores

    def at(self, scores) -> pd.DataFrame:
        """Estimated precision (and interval) of calling everyone scored >= each s. Called once
        per chunk of a long list, so it touches only the rows asked about, never the whole
        curve (copying it for each chunk made the work grow with the square of the list)."""
        queries = np.asarray(scores, dtype="float64")
        called = _sorted_search(self._ascending_keys, -queries)
        index = np.maximum(called - 1, 0)

        def pick(values: np.ndarray) -> np.ndarray:
            # NaN stands for calling no one (s above every score of the list)
            if not len(values):
                return np.full(len(queries), np.nan)
            return np.where(called > 0, values[index], np.nan)

        return pd.DataFrame(
            {
                "estimated_precision": pick(self.means),
                "estimated_precision_low": pick(self.low),
                "estimated_precision_high": pick(self.high),
            }
        )


def _sorted_search(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """`np.searchsorted(keys, queries, side="right")`, the queries searched in ascending order:
    each search then starts where the last one ended, in memory just read (random queries into
    a list of millions miss the cache at every step)."""
    if len(queries) <= 1:
        return np.searchsorted(keys, queries, side="right")
    order = np.argsort(queries, kind="stable")
    found = np.empty(len(queries), dtype="int64")
    found[order] = np.searchsorted(keys, queries[order], side="right")
    return found


def _prefix_intervals(p: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact intervals of the precision of the first 1, 2, ... rows, grown one row at a time."""
    low, high = np.empty(len(p)), np.empty(len(p))
    for i, pmf in enumerate(_growing(p), start=1):
        k_low, k_high = _quantiles(pmf, level)
        low[i - 1], high[i - 1] = k_low / i, k_high / i
    return low, high


def estimates_markdown(table: pd.DataFrame) -> str:
    """The estimates table as people read it: a figure with its interval beside the holdout's."""
    lines = [
        "| cut | called | estimated precision (90%) | holdout | estimated recall (90%) | holdout |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.setting if r.policy == 'capacity' else 'threshold ' + r.setting} "
            f"| {r.flagged:,} | {_figure(r.estimated_precision, r.precision_low, r.precision_high)}"
            f" | {_number(r.holdout_precision)} "
            f"| {_figure(r.estimated_recall, r.recall_low, r.recall_high)}"
            f" | {_number(r.holdout_recall)} |"
        )
    return "\n".join(lines)


def _number(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3f}"


def _figure(value: float, low: float, high: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3f} ({low:.3f}-{high:.3f})"
