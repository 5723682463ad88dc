"""Who scores after a training: the promotion rules as one plain function a notebook can call
with two versions' holdout figures. The `champion_model` asset measures the figures, calls
`choose_champion`, then moves the MLflow alias (or marks the version as waiting for approval)
as the choice says."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from affluent_assets.lib.model_selection import (
    PromotionDecision,
    PromotionFloors,
    decide_promotion,
)
from affluent_assets.lib.registry import RegisteredModel


@dataclass(frozen=True)
class PromotionRules:
    """A challenger must reach the champion's holdout PR-AUC minus `tolerance` and every
    absolute floor; with `require_approval`, one that passes waits for a person."""

    tolerance: float = 0.005
    floors: PromotionFloors = field(default_factory=PromotionFloors)
    require_approval: bool = False


@dataclass(frozen=True)
class ChampionChoice:
    decision: PromotionDecision
    challenger: RegisteredModel
    waiting: bool  # passed every gate, waits for `affluent approve`
    serving: RegisteredModel | None  # the version that scores from now on; None: none yet

    @property
    def label(self) -> str:
        if self.decision.promote:
            return "promoted"
        if self.waiting:
            return "pending_approval"
        return "kept_champion" if self.serving else "no_champion"

    @property
    def winner(self) -> str:
        return f"v{self.serving.version}" if self.serving else "none"

    def record(self) -> dict:
        """The `champion_model` table's row. With no champion at all (the first model missed
        a floor), the model name is the challenger's and the version is empty."""
        serving, decision = self.serving, self.decision
        return {
            "model_name": (serving or self.challenger).name,
            "model_version": serving.version if serving else None,
            "mlflow_run_id": serving.run_id if serving else None,
            "threshold": serving.threshold if serving else None,
            "decile_edges": _edges(serving),
            "challenger_version": self.challenger.version,
            "decision": self.label,
            "reason": decision.reason,
            "challenger_pr_auc": decision.challenger_pr_auc,
            "champion_pr_auc": decision.champion_pr_auc,
            "pr_auc_margin": decision.margin,
            "tolerance": decision.tolerance,
            "decided_at": datetime.now(UTC).replace(tzinfo=None),
        }


def _edges(model: RegisteredModel | None) -> str | None:
    return json.dumps(model.decile_edges) if model else None


def choose_champion(
    challenger: RegisteredModel,
    challenger_metrics: Mapping[str, float],
    current: RegisteredModel | None,
    current_pr_auc: float | None,
    rules: PromotionRules,
) -> ChampionChoice:
    """The challenger's holdout figures (`pr_auc`, `recall`, `brier_score`) against the
    champion's PR-AUC on the same holdout rows (None: there is no champion, or it is the
    challenger itself)."""
    pr_auc = float(challenger_metrics["pr_auc"])
    if current is not None and current.version == challenger.version:
        decision = PromotionDecision(
            True, "the newly trained model is already the champion", pr_auc, pr_auc,
            rules.tolerance,
        )  # fmt: skip
        return ChampionChoice(decision, challenger, False, challenger)
    failures = rules.floors.failures(challenger_metrics)
    decision = decide_promotion(pr_auc, current_pr_auc, rules.tolerance, failures)
    if decision.promote and rules.require_approval:
        reason = (
            f"{decision.reason}; passed every gate, waiting for approval: "
            f"affluent approve {challenger.version}"
        )
        return ChampionChoice(replace(decision, promote=False, reason=reason), challenger,
                              True, current)  # fmt: skip
    return ChampionChoice(decision, challenger, False, challenger if decision.promote else current)
