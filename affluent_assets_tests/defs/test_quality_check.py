"""The non-blocking data-quality check warns only about what is worth a look: the contract's own
placeholder age is counted as info, an unknown level or an impossible age is a warning."""

from affluent_assets.defs.ingest.assets import quality_check_result
from affluent_assets.lib.data_quality import quality_findings
from affluent_assets.lib.demo_data import generate_customers


def check_of(frame):
    return quality_check_result(quality_findings(frame), asset_key="raw_customers")


def test_the_documented_age_placeholder_is_info_not_a_warning():
    frame = generate_customers(500, seed=12)
    frame.loc[[3, 40, 41], "C_AGE"] = 122
    check = check_of(frame)
    assert check.passed
    assert check.metadata["age_placeholder_122"].value >= 3
    assert check.metadata["info"].value >= 3 and check.metadata["findings"].value == 0
    assert "info (documented placeholders): age_placeholder_122" in check.description


def test_a_fresh_demo_extract_of_the_contracts_population_passes():
    # The demo generator reproduces the contract's quirks: age 122 and minors at 2 and 12.
    check = check_of(generate_customers(3000, seed=13))
    assert check.passed and check.metadata["info"].value > 0, check.description


def test_an_unknown_level_or_an_impossible_age_still_warns():
    frame = generate_customers(500, seed=14)
    frame.loc[7, "C_AGE"] = 150
    frame.loc[8, "C_AGE"] = 122
    check = check_of(frame)
    assert not check.passed
    assert check.metadata["age_out_of_range"].value == 1
    assert check.description.startswith("warnings: age_out_of_range 1")
