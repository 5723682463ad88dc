"""The promotion rules as a plain function: two versions' figures in, who scores out."""

from affluent_assets.lib.model_selection import PromotionFloors
from affluent_assets.lib.promotion import PromotionRules, choose_champion
from affluent_assets.lib.registry import RegisteredModel

GOOD = {"pr_auc": 0.66, "recall": 0.80, "brier_score": 0.10}


def version(number: str) -> RegisteredModel:
    return RegisteredModel("affluent_classifier", number, f"run-{number}", 0.2, [0.5] * 9)


def test_a_first_model_that_reaches_the_floors_is_promoted():
    choice = choose_champion(version("1"), GOOD, None, None, PromotionRules())
    assert choice.label == "promoted" and choice.serving == version("1")
    assert choice.record()["model_version"] == "1" and choice.winner == "v1"


def test_a_first_model_under_a_floor_leaves_no_champion():
    choice = choose_champion(version("1"), GOOD | {"recall": 0.5}, None, None, PromotionRules())
    assert choice.label == "no_champion" and choice.serving is None
    assert "recall 0.5000 < floor 0.6000" in choice.decision.reason
    record = choice.record()
    assert record["model_version"] is None and record["model_name"] == "affluent_classifier"


def test_a_worse_challenger_keeps_the_champion():
    choice = choose_champion(version("2"), GOOD, version("1"), 0.70, PromotionRules())
    assert choice.label == "kept_champion" and choice.serving == version("1")
    assert round(choice.decision.margin, 2) == -0.04


def test_within_the_tolerance_the_challenger_takes_over():
    rules = PromotionRules(tolerance=0.05, floors=PromotionFloors())
    assert choose_champion(version("2"), GOOD, version("1"), 0.70, rules).label == "promoted"


def test_with_approval_required_a_passing_model_waits_and_the_champion_stays():
    rules = PromotionRules(require_approval=True)
    choice = choose_champion(version("2"), GOOD, version("1"), 0.60, rules)
    assert choice.label == "pending_approval" and choice.waiting
    assert choice.serving == version("1") and "affluent approve 2" in choice.decision.reason


def test_the_champion_retrained_into_itself_stays_without_waiting():
    rules = PromotionRules(require_approval=True)
    choice = choose_champion(version("3"), GOOD, version("3"), None, rules)
    assert choice.label == "promoted" and not choice.waiting
