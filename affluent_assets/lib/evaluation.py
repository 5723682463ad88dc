"""Classification metrics and charts. The platform reports them on holdout rows (and, labelled
`cv_`, on out-of-fold training predictions); never on rows a model was fitted on."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TOP_SHARES = (0.05, 0.10, 0.20)


def classification_metrics(
    y_true: pd.Series, probability: pd.Series, threshold: float
) -> dict[str, float]:
    """ROC-AUC, PR-AUC, and recall/precision/F1/confusion at the threshold, plus recall in the
    top 5/10/20% of scores (what a capacity-bound campaign would reach)."""
    y = np.asarray(y_true, dtype="int64")
    p = np.asarray(probability, dtype="float64")
    predicted = (p >= threshold).astype("int64")
    tn, fp, fn, tp = confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    metrics = {
        "roc_auc": roc_auc_score(y, p),
        "pr_auc": average_precision_score(y, p),
        "brier_score": brier_score_loss(y, p),
        "threshold": threshold,
        "recall": recall_score(y, predicted, zero_division=0),
        "precision": precision_score(y, predicted, zero_division=0),
        "f1": f1_score(y, predicted, zero_division=0),
        "true_positives": tp,
        "false_positives": fp,
        "true_negatives": tn,
        "false_negatives": fn,
        "flagged_share": predicted.mean(),
        "base_rate": y.mean(),
        "rows": len(y),
    }
    order = np.argsort(-p, kind="stable")
    for share in TOP_SHARES:
        top = order[: max(1, int(round(share * len(p))))]
        metrics[f"recall_top_{int(share * 100)}pct"] = y[top].sum() / max(1, y.sum())
        metrics[f"precision_top_{int(share * 100)}pct"] = y[top].mean()
    return {name: float(value) for name, value in metrics.items()}


@dataclass(frozen=True, eq=False)  # arrays: field-wise == would be ambiguous
class HoldoutCurve:
    """The holdout's precision and recall for every score cut: at each distinct holdout score
    (descending), how many holdout rows score at or above it and how many of them are AFFLUENT.
    Stored with the model (MLflow artifact `holdout_curve.json`), so any list the model scores,
    landed batches included, says how precise calling down to each customer is likely to be.
    Counts only: no customer row is in it.

    `next_lower[i]` is the highest holdout score below `cuts[i]` (for every cut but the last).
    Unthinned it equals `cuts[i + 1]`; where thinning dropped cuts it is the first dropped one,
    which is what tells `at` whether a query falls where exact figures were dropped."""

    cuts: np.ndarray
    called: np.ndarray
    caught: np.ndarray
    next_lower: np.ndarray
    positives: int

    def __post_init__(self):
        points = len(self.cuts)
        if len(self.called) != points or len(self.caught) != points:
            raise ValueError("holdout curve: cuts, called and caught differ in length")
        if len(self.next_lower) != max(0, points - 1):
            raise ValueError("holdout curve: next_lower needs one score per cut but the last")

    @classmethod
    def from_holdout(
        cls, y_true: pd.Series, probability: pd.Series, max_points: int | None = 5000
    ) -> HoldoutCurve:
        """The curve of the holdout's labels and probabilities. With more distinct scores than
        `max_points`, only that many cuts are kept, evenly spaced by rank (always the first and
        the last) so the artifact stays small; the figures at kept cuts stay exact. None: all."""
        if max_points is not None and max_points < 2:
            raise ValueError(f"max_points must keep at least the first and last cut: {max_points}")
        y = np.asarray(y_true, dtype="int64")
        p = np.asarray(probability, dtype="float64")
        if len(y) != len(p):
            raise ValueError(f"{len(y)} labels but {len(p)} probabilities")
        if np.isnan(p).any():
            raise ValueError("holdout probabilities hold NaN: no score order to cut at")
        order = np.argsort(-p, kind="stable")
        sorted_p, hits = p[order], np.cumsum(y[order])
        # The last row of each run of equal scores: everyone at or above that score is called.
        last = np.flatnonzero(np.append(sorted_p[1:] != sorted_p[:-1], len(p) > 0))
        kept = np.arange(len(last))
        if max_points is not None and len(last) > max_points:
            kept = np.unique(np.linspace(0, len(last) - 1, max_points).round().astype("int64"))
        return cls(
            cuts=sorted_p[last[kept]],
            called=last[kept] + 1,
            caught=hits[last[kept]],
            next_lower=sorted_p[last[kept[:-1] + 1]],
            positives=int(y.sum()),
        )

    def at(self, scores, min_called: int = 1) -> pd.DataFrame:
        """For each score s: the precision and recall of calling everyone scored >= s, indexed
        like `scores` when it is a Series. No one called (s above every holdout score, or NaN):
        precision NaN, recall 0.

        `min_called` > 1: where fewer holdout rows than that score >= s (the top of a list),
        the figures of the first cut that calls that many. A handful of holdout customers
        above a high score, all AFFLUENT by chance, would otherwise promise precision 1.0;
        this reports what enough of them did, which leans low for the very top (not oversold).

        Thinned curves keep no figures for the dropped cuts, so where s falls among them this
        reports the next kept cut below s: the fewest calls that still include everyone scored
        >= s. A few more rows are called than strictly asked for, so precision leans low (the
        list is not oversold) and recall leans high. Elsewhere, and always unthinned, exact."""
        return pd.DataFrame(
            self.figures(scores, min_called),
            index=scores.index if isinstance(scores, pd.Series) else None,
        )

    def figures(self, scores, min_called: int = 1) -> dict[str, np.ndarray]:
        """`at` as arrays: `expected_precision` and `expected_recall` per score."""
        called, caught = self.support(scores, min_called)
        return {
            "expected_precision": np.where(called > 0, caught / np.maximum(called, 1), np.nan),
            "expected_recall": caught / max(1, self.positives),
        }

    def support(self, scores, min_called: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """For each score s, the holdout rows `at` reports on: how many are called and how
        many of them are AFFLUENT (0 and 0 where no one is)."""
        queries = np.atleast_1d(np.asarray(scores, dtype="float64"))
        # Cuts are descending: this counts the cuts >= s, so `point` is the lowest cut >= s
        # (-1: none) and everyone scored >= s is exactly everyone scored >= that cut ...
        point = np.searchsorted(-self.cuts, -queries, side="right") - 1
        point[np.isnan(queries)] = -1
        # ... unless a dropped holdout score lies in [s, cut): then those rows are not in its
        # figures and the next kept cut, which calls them too, applies.
        lower = np.append(self.next_lower, np.nan)  # NaN: nothing below the last cut
        dropped = (point >= 0) & (queries <= lower[np.maximum(point, 0)])
        point = point + dropped
        if min_called > 1 and len(self.called):
            enough = min(int(np.searchsorted(self.called, min_called)), len(self.called) - 1)
            point = np.where(np.isnan(queries), -1, np.maximum(point, enough))
        # Index 0 of the padded counts stands for calling no one.
        return np.append(0, self.called)[point + 1], np.append(0, self.caught)[point + 1]

    def to_dict(self) -> dict:
        """JSON-safe: plain lists of floats and ints."""
        return {
            "version": 1,
            "cuts": [float(cut) for cut in self.cuts],
            "called": [int(count) for count in self.called],
            "caught": [int(count) for count in self.caught],
            "next_lower": [float(score) for score in self.next_lower],
            "positives": int(self.positives),
        }

    @classmethod
    def from_dict(cls, data: dict) -> HoldoutCurve:
        if data.get("version") != 1:
            raise ValueError(f"unknown holdout curve version {data.get('version')!r}")
        cuts = np.asarray(data["cuts"], dtype="float64")
        # Curves stored before `next_lower` existed read as unthinned: their kept cuts' exact
        # figures, the lowest kept cut >= s between them (how they were read then).
        next_lower = data.get("next_lower", cuts[1:])
        return cls(
            cuts=cuts,
            called=np.asarray(data["called"], dtype="int64"),
            caught=np.asarray(data["caught"], dtype="int64"),
            next_lower=np.asarray(next_lower, dtype="float64"),
            positives=int(data["positives"]),
        )


# Holdout rows a list's figure stands on at least: the top of a list reports what its best
# 100 holdout customers did, never the few that scored as high (issue 21).
LIST_MIN_CALLED = 100


def precision_at_scores(
    y_true: pd.Series, probability: pd.Series, scores: pd.Series, min_called: int = 1
) -> pd.DataFrame:
    """For each score s: the holdout precision and recall of calling everyone scored >= s
    (over at least `min_called` holdout rows, see `HoldoutCurve.at`).

    This is how precise a candidate list cut at that customer is likely to be."""
    curve = HoldoutCurve.from_holdout(y_true, probability, max_points=None)
    return curve.at(scores, min_called=min_called)


def lift_table(y_true: pd.Series, probability: pd.Series, bins: int = 10) -> pd.DataFrame:
    """Per score decile of the holdout: customers, AFFLUENT rate, lift and cumulative recall."""
    frame = pd.DataFrame({"y": np.asarray(y_true), "p": np.asarray(probability)})
    frame = frame.sort_values("p", ascending=False, kind="stable").reset_index(drop=True)
    frame["bin"] = (np.arange(len(frame)) * bins // len(frame)) + 1
    table = frame.groupby("bin").agg(
        customers=("y", "size"), affluent=("y", "sum"), min_score=("p", "min")
    )
    table["affluent_rate"] = table["affluent"] / table["customers"]
    table["lift"] = table["affluent_rate"] / frame["y"].mean()
    table["cumulative_recall"] = table["affluent"].cumsum() / frame["y"].sum()
    return table.reset_index().rename(columns={"bin": "decile"})


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display on servers), imported when a chart is
    drawn: a landing run never draws one and need not pay for the import."""
    import matplotlib

    matplotlib.use("Agg")  # must precede pyplot
    import matplotlib.pyplot as plt

    return plt


def png_markdown(figure: Figure, title: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    pyplot().close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"![{title}](data:image/png;base64,{encoded})"


def precision_recall_plot(y_true: pd.Series, probability: pd.Series, threshold: float) -> str:
    """Markdown image of the holdout precision-recall curve with the chosen threshold marked."""
    precision, recall, thresholds = precision_recall_curve(y_true, probability)
    at = min(int(np.searchsorted(thresholds, threshold)), len(thresholds) - 1)
    figure, axes = pyplot().subplots(figsize=(5, 4))
    axes.plot(recall, precision, label="holdout")
    axes.scatter(
        [recall[at]], [precision[at]], color="red", zorder=3, label=f"threshold {threshold:.3f}"
    )
    axes.axhline(float(np.mean(y_true)), color="grey", linestyle=":", label="base rate")
    axes.set(
        xlabel="recall (AFFLUENT)",
        ylabel="precision",
        title="Precision-recall, holdout",
        ylim=(0, 1.02),
    )
    axes.legend(loc="upper right")
    return png_markdown(figure, "precision-recall curve")


def lift_plot(lift: pd.DataFrame) -> str:
    """Markdown image of lift per score decile and cumulative recall."""
    figure, axes = pyplot().subplots(figsize=(5, 4))
    axes.bar(lift["decile"], lift["lift"], color="tab:blue", label="lift")
    axes.set(
        xlabel="score decile (1 = highest)", ylabel="lift over base rate", title="Lift, holdout"
    )
    twin = axes.twinx()
    twin.plot(
        lift["decile"],
        lift["cumulative_recall"],
        color="tab:orange",
        marker="o",
        label="cumulative recall",
    )
    twin.set(ylabel="cumulative recall", ylim=(0, 1.02))
    axes.set_xticks(lift["decile"])
    return png_markdown(figure, "lift chart")


def reliability_table(y_true: pd.Series, probability: pd.Series, bins: int = 10) -> pd.DataFrame:
    """Calibration check: customers grouped by predicted probability (equal-width bins); for a
    calibrated model the observed AFFLUENT rate matches the mean prediction in every bin."""
    frame = pd.DataFrame({"y": np.asarray(y_true), "p": np.asarray(probability, dtype="float64")})
    frame["bin"] = np.minimum((frame["p"] * bins).astype(int), bins - 1)
    table = frame.groupby("bin").agg(
        customers=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean")
    )
    table = table.reset_index()
    table["bin_from"] = table["bin"] / bins
    table["bin_to"] = (table["bin"] + 1) / bins
    table["gap"] = table["observed_rate"] - table["mean_predicted"]
    return table[["bin_from", "bin_to", "customers", "mean_predicted", "observed_rate", "gap"]]


DEFAULT_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.05))
DEFAULT_CAPACITIES = ("100", "500", "1000", "5%", "10%")


def capacity_count(capacity: str, normal_customers: int) -> int:
    """'500' -> 500 customers; '5%' -> 5% of the NORMAL customers (at least 1)."""
    text = str(capacity).strip()
    if text.endswith("%"):
        return max(1, int(round(float(text[:-1]) / 100 * normal_customers)))
    count = int(text)
    if count < 1:
        raise ValueError(f"capacity must be at least 1 customer, got {capacity!r}")
    return count


def threshold_for_capacity(normal_scores: pd.Series, count: int) -> float:
    """The score of the `count`-th best NORMAL customer: calling down to it reaches `count`
    (a few more where customers tie at exactly that score)."""
    if count < 1:
        raise ValueError(f"capacity must be at least 1 customer, got {count}")
    ordered = np.sort(np.asarray(normal_scores, dtype="float64"))[::-1]
    if len(ordered) == 0:
        return 1.0
    return float(ordered[min(count, len(ordered)) - 1])


def operating_points(
    holdout_labels: pd.Series,
    holdout_scores: pd.Series,
    normal_scores: pd.Series,
    thresholds=DEFAULT_THRESHOLDS,
    capacities=DEFAULT_CAPACITIES,
) -> pd.DataFrame:
    """For score thresholds and contact capacities: the expected precision and recall (holdout
    rows) and how many NORMAL customers of the scored population would be flagged."""
    normal = np.asarray(normal_scores, dtype="float64")
    rows = [("threshold", f"{t:.2f}", float(t)) for t in thresholds]
    for capacity in capacities:
        count = capacity_count(capacity, len(normal))
        rows.append(("capacity", f"top {capacity}", threshold_for_capacity(normal, count)))
    table = pd.DataFrame(rows, columns=["policy", "setting", "threshold"])
    expected = precision_at_scores(holdout_labels, holdout_scores, table["threshold"])
    table["expected_precision"] = expected["expected_precision"].to_numpy()
    table["expected_recall"] = expected["expected_recall"].to_numpy()
    table["normal_flagged"] = [int((normal >= t).sum()) for t in table["threshold"]]
    return table


def importance_plot(importance: pd.Series, top: int = 15) -> str:
    """Markdown image of global feature importance (mean |contribution| per feature)."""
    shown = importance.sort_values(ascending=True).tail(top)
    figure, axes = pyplot().subplots(figsize=(6, 0.3 * len(shown) + 1))
    axes.barh(shown.index, shown.to_numpy(), color="tab:blue")
    axes.set(xlabel="mean |contribution| (training rows)", title="Global feature importance")
    return png_markdown(figure, "feature importance")
