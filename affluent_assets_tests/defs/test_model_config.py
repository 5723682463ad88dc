import dagster as dg
import pytest

from affluent_assets.defs.model.assets import TrainingConfig, check_training_config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"families": ["svm"]}, "families"),
        ({"families": []}, "families"),
        ({"selection_metric": "accuracy"}, "selection_metric"),
        ({"calibration": "magic"}, "calibration"),
        ({"target_recall": 0.0}, "target_recall"),
        ({"cv_folds": 1}, "cv_folds"),
    ],
)
def test_bad_training_config_is_refused_before_any_work(override, message):
    with pytest.raises(dg.Failure, match=message):
        check_training_config(TrainingConfig(**override))


def test_default_training_config_is_accepted():
    check_training_config(TrainingConfig())
