"""The ETB customer extract as the bank delivers it (see docs/data-contract.md).

One source of truth for column names, pandas types, category levels and the missingness blocks,
imported by the reader, the pandera schemas, the features and the demo-data generator (the
gap blocks are asserted by the tests).
"""

from __future__ import annotations

LABEL = "C_seg"
POSITIVE = "AFFLUENT"
NEGATIVE = "NORMAL"
LABEL_LEVELS = (NEGATIVE, POSITIVE)

DATA_SHEET = "Data"

# Column -> pandas dtype family as pandas reads the extract: "int", "float" or "text".
RAW_COLUMNS: dict[str, str] = {
    "C_ID": "int",
    "C_AGE": "int",
    "PC": "float",
    "C_EDU": "text",
    "C_HSE": "text",
    "gn_occ": "text",
    "INCM_TYP": "float",
    "NUM_PRD": "int",
    "CASATD_CNT": "float",
    "MTHCASA": "float",
    "MAXCASA": "float",
    "MINCASA": "float",
    "DRvCR": "float",
    "MTHTD": "float",
    "MAXTD": "float",
    "Asset value": "float",
    "HL_tag": "float",
    "AL_tag": "float",
    "pur_price_avg": "float",
    "UT_AVE": "float",
    "MAXUT": "float",
    "N_FUNDS": "float",
    "CC_AVE": "float",
    "MAX_MTH_TRN_AMT": "float",
    "MIN_MTH_TRN_AMT": "float",
    "AVG_TRN_AMT": "float",
    "ANN_TRN_AMT": "float",
    "ANN_N_TRX": "float",
    "CC_LMT": "float",
    LABEL: "text",
}
TEXT_COLUMNS = [c for c, t in RAW_COLUMNS.items() if t == "text" and c != LABEL]

# Columns that may never be blank in an extract.
REQUIRED_COLUMNS = ("C_ID", "C_AGE", "NUM_PRD", "Asset value")

# Columns that share one gap mask in the real extract.
GAP_BLOCKS: dict[str, tuple[str, ...]] = {
    "casa": ("MTHCASA", "MAXCASA", "MINCASA"),
    "td": ("MTHTD", "MAXTD"),
    "unit_trust": ("UT_AVE", "MAXUT", "N_FUNDS"),
    "card_trx": ("MAX_MTH_TRN_AMT", "MIN_MTH_TRN_AMT", "AVG_TRN_AMT", "ANN_TRN_AMT", "ANN_N_TRX"),
    "auto_loan": ("AL_tag", "pur_price_avg"),
}

# Counts and amounts that can never be negative (a negative value is a contract violation).
NON_NEGATIVE_COLUMNS = (
    "C_ID",
    "C_AGE",
    "PC",
    "NUM_PRD",
    "CASATD_CNT",
    "DRvCR",
    "MTHTD",
    "MAXTD",
    "Asset value",
    "pur_price_avg",
    "N_FUNDS",
    "CC_LMT",
    "ANN_N_TRX",
)

# Category levels seen in the full extract (count, of which AFFLUENT). A level outside these is a
# data-quality warning, not a rejection.
LEVELS: dict[str, dict[str, tuple[int, int]]] = {
    "C_EDU": {
        "Degree": (11222, 1881),
        "Diploma": (6329, 848),
        "O-Levels": (3928, 663),
        "Masters": (2628, 479),
        "A-Levels": (1177, 239),
        "Others": (973, 176),
        "Below O-Levels": (422, 73),
        "Professional Qualifications": (383, 33),
        "PHD/Doctorate": (367, 42),
        "Technical/Vocational Qualifications": (190, 16),
    },
    "C_HSE": {
        "HDB 4-5 ROOM": (15257, 2111),
        "PRIVATE CONDOMINIUM": (3431, 642),
        "SEMI-DETACHED": (2406, 435),
        "TERRACE": (486, 100),
        "SHOPHOUSE": (138, 12),
        "EXECUTIVE CONDOMINIUM": (98, 22),
        "PRIVATE APARTMENT": (97, 17),
        "HDB 1-3 ROOM": (95, 20),
        "HDB EXECUTIVE APARTMENT/ MANSIONETTE": (94, 12),
        "BUNGALOW": (61, 12),
        "INDUSTRIAL BUILDING": (1, 0),
        "COMMERICAL BUILDING": (1, 0),
        "OFFICE": (1, 0),
        "HOTEL/ SERVICE APARTMENT": (1, 0),
    },
    "gn_occ": {
        "PMEB": (34912, 5319),
        "BLUE COLLAR": (7552, 945),
        "HOUSEWIFE": (5868, 1471),
        "OTHERS": (5754, 803),
        "WHITE COLLAR": (5115, 853),
        "RETIREE": (4800, 1399),
        "STUDENT": (1204, 90),
    },
}
# Counts the extract stores as float (a blank makes pandas read float): whole numbers or blank.
COUNT_COLUMNS = ("NUM_PRD", "CASATD_CNT", "N_FUNDS", "ANN_N_TRX")
# The ranges docs/data-contract.md gives, to the precision it states them ("max 6.5M" allows
# up to 6,549,999): a value outside is a data-quality warning, not a rejection, since each
# range was measured on one extract and the next may reach a little further. Negative values
# of a never-negative column are rejected (NON_NEGATIVE_COLUMNS); ages, bands, NUM_PRD and
# N_FUNDS have findings of their own.
DOCUMENTED_RANGES: dict[str, tuple[float, float]] = {
    "C_ID": (0, 99_996),
    "PC": (0, 99_953),
    "CASATD_CNT": (1, 39),
    "MTHCASA": (-209_405, 6_549_999),
    "MAXCASA": (-209_405, 6_549_999),
    "MINCASA": (-209_405, 6_549_999),
    "DRvCR": (0, 11_635_000),
    "MTHTD": (798, 7_949_999),
    "MAXTD": (798, 7_949_999),
    "Asset value": (0, 7_944_999),
    "pur_price_avg": (13_600, 1_414_999),
    "CC_AVE": (0, 201_405),
    "CC_LMT": (0, 380_000),
}
INCOME_BANDS = tuple(range(1, 9))
NUM_PRD_RANGE = (1, 9)
N_FUNDS_RANGE = (1, 14)

# Ages outside this range are kept but flagged; 122 is the extract's placeholder for "unknown".
PLAUSIBLE_AGE = (18, 100)
AGE_PLACEHOLDER = 122

# Missing share overall / NORMAL / AFFLUENT in the full extract (66,083 rows).
MISSING_RATES: dict[str, tuple[float, float, float]] = {
    "PC": (0.0074, 0.0074, 0.0074),
    "C_EDU": (0.582, 0.580, 0.593),
    "C_HSE": (0.665, 0.659, 0.690),
    "gn_occ": (0.013, 0.015, 0.004),
    "INCM_TYP": (0.446, 0.428, 0.536),
    "CASATD_CNT": (0.380, 0.442, 0.066),
    "MTHCASA": (0.409, 0.469, 0.107),
    "DRvCR": (0.550, 0.609, 0.254),
    "MTHTD": (0.787, 0.855, 0.443),
    "HL_tag": (0.964, 0.966, 0.953),
    "AL_tag": (0.915, 0.904, 0.975),
    "UT_AVE": (0.959, 0.985, 0.832),
    "CC_AVE": (0.742, 0.733, 0.786),
    "ANN_TRN_AMT": (0.822, 0.820, 0.836),
    "CC_LMT": (0.278, 0.289, 0.218),
}
AFFLUENT_SHARE = 10926 / 66083
REAL_EXTRACT_ROWS = 66083

# Data dictionary sheet of the real workbook (note its spelling `Asset_value`).
DICTIONARY: list[tuple[str, str, str]] = [
    ("C_ID", "Customer number", "Not unique: different customers can share a number"),
    ("C_AGE", "Age of customer", "122 is a placeholder for unknown"),
    ("PC", "Postal code", "Dummy value"),
    ("C_EDU", "Education level", ""),
    ("C_HSE", "Housing type", ""),
    ("gn_occ", "Occupation group", ""),
    ("INCM_TYP", "Income band", "Ordinal code 1-8"),
    ("NUM_PRD", "Number of products held", ""),
    ("CASATD_CNT", "Number of CASA and time-deposit accounts", ""),
    ("MTHCASA", "Monthly average CASA balance", ""),
    ("MAXCASA", "Maximum CASA balance", ""),
    ("MINCASA", "Minimum CASA balance", "Can be negative"),
    ("DRvCR", "Debit versus credit ratio", ""),
    ("MTHTD", "Monthly average time-deposit balance", ""),
    ("MAXTD", "Maximum time-deposit balance", ""),
    ("Asset_value", "Total asset value", ""),
    ("HL_tag", "Home loan flag", "1 or blank"),
    ("AL_tag", "Auto loan flag", "1 or blank"),
    ("pur_price_avg", "Average purchase price of property or vehicle", ""),
    ("UT_AVE", "Average unit-trust holding", ""),
    ("MAXUT", "Maximum unit-trust holding", ""),
    ("N_FUNDS", "Number of unit-trust funds", ""),
    ("CC_AVE", "Average credit-card balance", ""),
    ("MAX_MTH_TRN_AMT", "Maximum monthly card transaction amount", ""),
    ("MIN_MTH_TRN_AMT", "Minimum monthly card transaction amount", ""),
    ("AVG_TRN_AMT", "Average monthly card transaction amount", "ANN_TRN_AMT / 12"),
    ("ANN_TRN_AMT", "Annual card transaction amount", ""),
    ("ANN_N_TRX", "Annual number of card transactions", ""),
    ("CC_LMT", "Credit-card limit", ""),
    ("C_seg", "Customer segment", "NORMAL or AFFLUENT"),
]
