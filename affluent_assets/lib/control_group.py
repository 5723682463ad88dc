"""A control group in every campaign list: a seeded random share of the candidates held back,
not to be called, so that the campaign's effect can be told from customers who would have
upgraded anyway (lib/uplift.py).

The draw is stratified by the list's own score deciles (1 = its best tenth), so control
customers sit at every rank in the same proportion and the called and the control compare
like with like. Each customer's draw is a hash of the seed and their key, not of their row
position: the same seed gives the same customers for the same list whatever its order, and a
customer keeps their draw when the list is rebuilt with another model."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from affluent_assets import settings

CONTROL, CAMPAIGN = "control", "campaign"
STRATA = 10
GROUP_DESCRIPTION = (
    "`campaign`: call; `control`: held back at random (a seeded share per score decile of the "
    "list) so the campaign's effect can be measured against customers not called"
)


@dataclass(frozen=True)
class ControlPolicy:
    share: float = 0.10
    seed: int = 21

    def __post_init__(self):
        if not 0 <= self.share < 1:
            raise ValueError(f"control share must be in [0, 1): {self.share}")

    @classmethod
    def from_settings(cls) -> ControlPolicy:
        return cls(settings.control_share(), settings.control_seed())


def _hashes(keys: np.ndarray, seed: int | str) -> np.ndarray:
    """pandas' keyed 64-bit hash of each key, its key derived from the seed (no per-row string
    is built, and nothing is factorized first: seconds for millions of keys)."""
    hash_key = hashlib.sha256(str(seed).encode()).hexdigest()[:16]
    try:
        return pd.util.hash_array(keys, hash_key=hash_key, categorize=False)
    except TypeError:  # keys that are not text (numbers): hashed as their text
        text = pd.Series(keys).astype(str).to_numpy(dtype=object)
        return pd.util.hash_array(text, hash_key=hash_key, categorize=False)


def uniform_draws(keys, seed: int | str) -> np.ndarray:
    """A number in [0, 1) per key, fixed by the seed and the key alone."""
    hashed = _hashes(np.asarray(keys, dtype=object), seed)
    return (hashed >> np.uint64(11)).astype("float64") / float(1 << 53)


def _refuse_repeats(keys: np.ndarray, hashed: np.ndarray) -> None:
    """Distinct hashes mean distinct keys; only when two hashes meet are the keys compared."""
    ordered = np.sort(hashed)
    if (ordered[1:] == ordered[:-1]).any() and pd.Series(keys).duplicated().any():
        raise ValueError("a control draw needs each customer once: the list repeats a key")


def decile_strata(scores) -> np.ndarray:
    """1..10: the list's own score deciles by rank (ties broken by position)."""
    p = np.asarray(scores, dtype="float64")
    rank = np.empty(len(p), dtype="int64")
    rank[np.argsort(-p, kind="stable")] = np.arange(len(p))
    return rank * STRATA // max(len(p), 1) + 1


def assign_groups(keys, scores, policy: ControlPolicy, salt: str = "") -> np.ndarray:
    """`control` or `campaign` for each customer of one list (`keys` unique). Each score decile
    of the list holds back its share: the stratum's count is the difference of the rounded
    running totals, so the whole list holds back round(share * n) and every stratum its part."""
    keys = np.asarray(keys, dtype=object)
    hashed = _hashes(keys, f"{policy.seed}|{salt}")
    _refuse_repeats(keys, hashed)
    groups = np.full(len(keys), CAMPAIGN, dtype=object)
    if policy.share == 0 or len(keys) == 0:
        return groups
    strata = decile_strata(scores)
    draws = hashed  # the lowest hashes of a stratum are its control: a seeded uniform draw
    sizes = np.bincount(strata, minlength=STRATA + 1)[1:]
    ends = np.round(policy.share * np.cumsum(sizes)).astype("int64")
    quotas = np.diff(np.append(0, ends))
    for stratum, quota in enumerate(quotas, start=1):
        members = np.flatnonzero(strata == stratum)
        chosen = members[np.argsort(draws[members], kind="stable")[:quota]]
        groups[chosen] = CONTROL
    return groups
