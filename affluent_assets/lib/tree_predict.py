"""The booster's own probabilities, bit for bit, from compiled tables: about twice the rows per
core of XGBoost's `inplace_predict` here, which was most of a large file's scoring time.

Each tree becomes a few arrays (the QuickScorer layout, Lucchese et al., SIGIR 2015): its
leaves, left to right, are the bits of one mask, and each split node holds the mask of the
leaves outside its left subtree. A row that goes right at a node cannot end in that node's
left subtree, so the row's leaf is the lowest bit left after masking at every node it goes
right at. Every node is compared for a block of rows at once, with no branch per row; blanks
take the node's default direction, as in the booster.

The arithmetic is the booster's, in its order: the base margin, then each tree's leaf added in
tree order in float32, then the booster's own sigmoid in float32 (glibc's `expf`, which the
booster calls too). Tests hold the result equal to `inplace_predict` bit for bit; a booster
this does not cover (not binary logistic, categorical splits, a tree of more than 64 leaves)
is not given a predictor, and its own `inplace_predict` is used.
"""

from __future__ import annotations

import json
import math
import weakref
from dataclasses import dataclass

import numpy as np
import xgboost as xgb

from affluent_assets.lib.kernels import numba, over_cores

MAX_LEAVES = 64  # a tree's leaves are the bits of one unsigned 64-bit mask


@dataclass(frozen=True)
class TreePredictor:
    """A binary logistic booster's trees as flat arrays: split node k of tree t (k in
    `tree_nodes[t]:tree_nodes[t + 1]`) compares feature `node_feature[k]` with
    `node_threshold[k]`, and a row going right keeps only the leaves in `node_mask[k]`; leaf
    i of tree t (from the left) is worth `leaf_value[tree_leaves[t] + i]`."""

    node_feature: np.ndarray
    node_threshold: np.ndarray
    node_default_left: np.ndarray
    node_mask: np.ndarray
    tree_nodes: np.ndarray
    leaf_value: np.ndarray
    tree_leaves: np.ndarray
    base_margin: np.float32

    @classmethod
    def of(cls, booster: xgb.Booster) -> TreePredictor | None:
        """The booster's predictor, or None when it is not one this predicts exactly."""
        learner = json.loads(booster.save_raw("json"))["learner"]
        if learner["objective"]["name"] != "binary:logistic":
            return None
        trees = learner["gradient_booster"]["model"]["trees"]
        parsed = [_tree_tables(tree) for tree in trees]
        if any(part is None for part in parsed):
            return None
        base_score = np.float32(str(learner["learner_model_param"]["base_score"]).strip("[]"))
        nodes = [n for n, _ in parsed]
        leaves = [leaf for _, leaf in parsed]
        return cls(
            node_feature=np.concatenate([n[0] for n in nodes] + [_none("int64")]),
            node_threshold=np.concatenate([n[1] for n in nodes] + [_none("float32")]),
            node_default_left=np.concatenate([n[2] for n in nodes] + [_none("bool")]),
            node_mask=np.concatenate([n[3] for n in nodes] + [_none("uint64")]),
            tree_nodes=np.cumsum([0] + [len(n[0]) for n in nodes]).astype("int64"),
            leaf_value=np.concatenate(leaves + [_none("float32")]),
            tree_leaves=np.cumsum([0] + [len(leaf) for leaf in leaves]).astype("int64"),
            base_margin=_base_margin(base_score),
        )

    def probability(self, matrix: np.ndarray) -> np.ndarray:
        """`booster.inplace_predict(matrix)`: float32 probabilities, the same bits."""
        matrix = np.asfortranarray(matrix, dtype="float32")  # a column's rows side by side
        out = np.empty(len(matrix), dtype="float32")
        over_cores(
            lambda rows: _predict_rows(
                matrix[rows], self.node_feature, self.node_threshold, self.node_default_left,
                self.node_mask, self.tree_nodes, self.leaf_value, self.tree_leaves,
                self.base_margin, _LOWEST_BIT, out[rows],
            ),
            len(matrix),
        )  # fmt: skip
        return out


def _base_margin(base_score: np.float32) -> np.float32:
    """The booster's margin of its base score: the odds in float32, their logarithm correctly
    rounded to float32 (as glibc's `logf` gives it; NumPy's float32 log may miss by one bit)."""
    odds = np.float32(1) / base_score - np.float32(1)
    return np.float32(-math.log(float(odds)))


def _none(dtype: str) -> np.ndarray:
    return np.zeros(0, dtype=dtype)


def _tree_tables(tree: dict) -> tuple[tuple, np.ndarray] | None:
    """A tree's split nodes (feature, threshold, default left, mask) and its leaf values from
    the left; None when this cannot predict it exactly."""
    left, right = tree["left_children"], tree["right_children"]
    if any(int(t) != 0 for t in tree.get("split_type", [])):
        return None
    condition = np.asarray(tree["split_conditions"], dtype="float32")
    order = _leaves_from_left(left, right)
    if len(order) > MAX_LEAVES:
        return None
    bit = {leaf: i for i, leaf in enumerate(order)}
    every = (1 << 64) - 1
    splits = [node for node in range(len(left)) if left[node] != -1]
    masks = []
    for node in splits:
        mask = every
        for leaf in _leaves_from_left(left, right, left[node]):
            mask &= ~(1 << bit[leaf])
        masks.append(mask)
    nodes = (
        np.asarray([tree["split_indices"][n] for n in splits], dtype="int64"),
        condition[splits].astype("float32"),
        np.asarray([tree["default_left"][n] for n in splits], dtype=bool),
        np.asarray(masks, dtype="uint64"),
    )
    return nodes, condition[order].astype("float32")


def _leaves_from_left(left: list, right: list, node: int = 0) -> list[int]:
    if left[node] == -1:
        return [node]
    return _leaves_from_left(left, right, left[node]) + _leaves_from_left(left, right, right[node])


def _lowest_bit_table() -> np.ndarray:
    """Index of a 64-bit word's only set bit from its de Bruijn product (numba has no
    count-trailing-zeros): `table[(bit * DE_BRUIJN) >> 58]`."""
    table = np.zeros(64, dtype="int64")
    for i in range(64):
        table[((1 << i) * DE_BRUIJN % (1 << 64)) >> 58] = i
    return table


DE_BRUIJN = 0x03F79D71B4CB0A89
_LOWEST_BIT = _lowest_bit_table()
BLOCK_ROWS = 256  # rows compared together at each node


@numba.njit(cache=True, nogil=True)
def _predict_rows(
    matrix, node_feature, node_threshold, node_default_left, node_mask, tree_nodes, leaf_value,
    tree_leaves, base_margin, lowest_bit, out,
):  # fmt: skip
    rows, columns = matrix.shape
    values = np.empty((columns, BLOCK_ROWS), dtype=np.float32)  # the block, feature-major
    mask = np.empty(BLOCK_ROWS, dtype=np.uint64)
    margin = np.empty(BLOCK_ROWS, dtype=np.float32)
    every, de_bruijn, one = np.uint64(0xFFFFFFFFFFFFFFFF), np.uint64(DE_BRUIJN), np.uint64(1)
    for first in range(0, rows, BLOCK_ROWS):
        n = min(BLOCK_ROWS, rows - first)
        for column in range(columns):
            for r in range(n):
                values[column, r] = matrix[first + r, column]
        margin[:n] = base_margin
        for tree in range(len(tree_nodes) - 1):
            mask[:n] = every
            for node in range(tree_nodes[tree], tree_nodes[tree + 1]):
                feature, threshold = node_feature[node], node_threshold[node]
                default, keep = node_default_left[node], node_mask[node]
                for r in range(n):
                    value = values[feature, r]
                    goes_left = (value < threshold) | (np.isnan(value) & default)
                    mask[r] &= every if goes_left else keep
            start = tree_leaves[tree]
            for r in range(n):
                lowest = mask[r] & (~mask[r] + one)
                margin[r] += leaf_value[start + lowest_bit[(lowest * de_bruijn) >> np.uint64(58)]]
        for r in range(n):
            # The booster's sigmoid: float32 throughout, its exponent capped as it caps it.
            out[first + r] = np.float32(1) / (
                np.float32(math.exp(min(-margin[r], np.float32(88.7)))) + np.float32(1)
            )


_PREDICTORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def predictor(booster: xgb.Booster) -> TreePredictor | None:
    """One predictor per loaded booster (None: the booster predicts itself)."""
    if booster not in _PREDICTORS:
        _PREDICTORS[booster] = TreePredictor.of(booster)
    return _PREDICTORS[booster]
