"""The figures of the real ETB extract that the demo generator (lib/demo_data.py) reproduces:
each code's count per class, each amount's and count's quantile curve, and how far each value
separates the classes. Numbers only, kept apart from the mechanism that draws rows from them,
so that they can be read and retuned without reading how the rows are drawn.
"""

from __future__ import annotations

# (count, of which AFFLUENT) per code in the full extract; contract.LEVELS only covers text columns.
INCOME_LEVELS: dict[float, tuple[int, int]] = {
    1.0: (2424, 431),
    2.0: (9064, 1049),
    3.0: (5489, 746),
    4.0: (5867, 784),
    5.0: (5923, 912),
    6.0: (6493, 992),
    7.0: (1075, 118),
    8.0: (282, 43),
}
NUM_PRD_LEVELS: dict[int, tuple[int, int]] = {
    1: (23517, 976),
    2: (22286, 2459),
    3: (13209, 3963),
    4: (5000, 2277),
    5: (1604, 922),
    6: (378, 255),
    7: (76, 61),
    8: (12, 12),
    9: (1, 1),
}

# Quantile curves: (shares of non-missing rows, values at those shares). Amount curves are
# interpolated in asinh space, which behaves like a log scale but passes through zero and
# negatives; two knots at 0 give an exact-zero share. Count curves are interpolated in log space
# and floored.
Curve = tuple[tuple[float, ...], tuple[float, ...]]
AMOUNT_CURVES: dict[str, Curve] = {
    "PC": ((0, 0.032, 0.0321, 0.5, 1), (0, 0, 10_000, 50_000, 99_953)),
    "MTHCASA": (
        (0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1),
        (-150_000, 0, 180, 1_000, 4_143, 18_000, 55_000, 450_000, 6_500_000),
    ),
    "MAXCASA": (
        (0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1),
        (1, 170, 950, 4_015, 17_000, 52_000, 430_000, 6_400_000),
    ),
    "MINCASA": (
        (0, 0.035, 0.06, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1),
        (-209_405, 0, 0, 60, 600, 3_251, 14_000, 45_000, 380_000, 6_000_000),
    ),
    "DRvCR": (
        (0, 0.056, 0.06, 0.25, 0.5, 0.75, 0.95, 0.999, 1),
        (0, 0, 10, 600, 3_000, 14_000, 110_000, 2_500_000, 11_635_000),
    ),
    "MTHTD": (
        (0, 0.1, 0.25, 0.5, 0.75, 0.95, 0.999, 1),
        (798, 10_000, 25_000, 60_000, 150_000, 600_000, 4_000_000, 7_900_000),
    ),
    "MAXTD": (
        (0, 0.1, 0.25, 0.5, 0.75, 0.95, 0.999, 1),
        (798, 8_000, 20_000, 50_000, 130_000, 550_000, 3_800_000, 7_900_000),
    ),
    "Asset value": (
        (0, 0.36, 0.365, 0.5, 0.7, 0.9, 0.99, 1),
        (0, 0, 5, 1_040, 20_000, 150_000, 1_200_000, 7_940_000),
    ),
    "pur_price_avg": (
        (0, 0.25, 0.5, 0.75, 0.99, 1),
        (13_600, 55_000, 95_000, 160_000, 700_000, 1_410_000),
    ),
    "UT_AVE": ((0, 0.25, 0.5, 0.75, 0.99, 1), (10, 5_000, 20_000, 60_000, 800_000, 3_000_000)),
    "CC_AVE": (
        (0, 0.16, 0.17, 0.5, 0.75, 0.95, 0.999, 1),
        (0, 0, 10, 1_500, 4_000, 15_000, 80_000, 201_405),
    ),
    "ANN_TRN_AMT": ((0, 0.25, 0.5, 0.75, 0.99, 1), (5, 1_500, 6_000, 18_000, 200_000, 1_500_000)),
    "CC_LMT": ((0, 0.62, 0.621, 0.75, 0.9, 0.99, 1), (0, 0, 500, 8_000, 20_000, 80_000, 380_000)),
}
COUNT_CURVES: dict[str, Curve] = {
    "CASATD_CNT": (
        (0, 0.4, 0.68, 0.83, 0.91, 0.95, 0.98, 0.995, 0.9999, 1),
        (1, 2, 3, 4, 5, 6, 9, 15, 30, 40),
    ),
    "N_FUNDS": ((0, 0.45, 0.7, 0.83, 0.91, 0.95, 0.985, 1), (1, 2, 3, 4, 5, 6, 9, 15)),
}
AGE_CURVE: Curve = ((0, 0.1, 0.25, 0.5, 0.75, 0.9, 1), (18, 33, 42, 52, 62, 71, 99))

# AFFLUENT-minus-NORMAL gap of each value latent, in within-class standard deviations: how strongly
# an amount separates the classes. Tuned so correlation ratios land near the contract's.
VALUE_GAPS = {
    "C_AGE": 0.4,
    "CASATD_CNT": 1.4,
    "MTHCASA": 0.95,
    "DRvCR": 0.8,
    "MTHTD": 1.2,
    "Asset value": 1.5,
    "pur_price_avg": 0.3,
    "UT_AVE": 1.5,
    "N_FUNDS": 1.3,
    "CC_AVE": 0.15,
    "ANN_TRN_AMT": 0.15,
    "CC_LMT": 0.25,
}
