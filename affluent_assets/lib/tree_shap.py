"""Exact path-dependent tree SHAP for an XGBoost booster, vectorized over rows.

The reasons on a candidate list are tree SHAP values; XGBoost's own `pred_contribs` computes
them row by row at a few thousand rows per second here, which made explaining a landed file's
candidates cost several times its scoring. The values are the same computed another way:

For path-dependent tree SHAP the value of a coalition S is a sum over leaves of
`leaf value x product over the leaf's path features j of (o_j if j in S else z_j)`, where
`o_j` is 1 when the row satisfies every split on feature j along the path and `z_j` is the
share of training cover that followed those splits. Shapley values are linear in the game, and
for one leaf's product game they depend on the row only through the bits `o_j` of at most
`depth` features: so each leaf gets a small table (one row per bit pattern) computed once, and
scoring a row is a comparison per split node, then a bit pattern and a lookup per leaf, in one
compiled kernel. Tests hold the result equal to `pred_contribs` (float32 rounding apart).
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from math import factorial

import numpy as np
import xgboost as xgb


def _writable_numba_cache() -> None:
    """numba keeps compiled kernels beside this file, or in the user's cache; an image that
    runs read-only or as an arbitrary user has neither, so it gets a folder in the temporary
    directory (per user) unless NUMBA_CACHE_DIR says where."""
    if "NUMBA_CACHE_DIR" in os.environ or os.access(os.path.dirname(__file__), os.W_OK):
        return
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), f"numba-{os.getuid()}")


_writable_numba_cache()
import numba  # noqa: E402  (reads NUMBA_CACHE_DIR when imported)


@dataclass(frozen=True)
class _Leaf:
    features: np.ndarray  # the distinct features on the path, in path order
    # For each distinct feature, the path's conditions on it: (node, goes_left) pairs.
    conditions: tuple[tuple[tuple[int, bool], ...], ...]
    columns: tuple[np.ndarray, ...]  # per path feature: SHAP contribution by bit pattern
    last: tuple[int, bool] | None  # the path's last step (None: a tree that is one leaf)


@dataclass(frozen=True)
class _Tree:
    split_feature: np.ndarray
    threshold: np.ndarray  # float32, as the booster compares
    default_left: np.ndarray
    internal: np.ndarray  # the nodes that split
    leaves: tuple[_Leaf, ...]


class TreeExplainer:
    """Exact tree SHAP values of a fitted booster (binary logistic, numeric splits).

    Every leaf of every tree is flattened into arrays once (its path conditions, the features
    they test, its table), and one compiled kernel (numba, no Python per row or leaf) walks
    them for each row: a row costs a comparison per split node and a table lookup per leaf,
    so one row takes well under a millisecond and millions take seconds. Sibling leaves are
    walked as one (`_Unit`), about half as many, and only split nodes are compared. Rows are
    independent, so large inputs are split over the cores; each row's sums are added in the
    same order (tree by tree, unit by unit) whatever the split, so a row gets the same values
    alone or in a batch of millions."""

    def __init__(self, booster: xgb.Booster):
        model = json.loads(booster.save_raw("json"))
        trees = model["learner"]["gradient_booster"]["model"]["trees"]
        self.booster = booster
        self.features = int(model["learner"]["learner_model_param"]["num_feature"])
        self.trees = [_parse_tree(tree) for tree in trees]
        self.flat = _Flattened.of(self.trees, self.features)

    def contributions(
        self, matrix: np.ndarray, base: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-row SHAP value of each column (log-odds) and the base value per row; each row's
        values plus its base sum to the booster's margin. Without `base`, None for it (the
        base needs a second prediction, and reasons do not use it)."""
        matrix = np.ascontiguousarray(matrix, dtype="float32")  # a row's values side by side
        phi = np.zeros((len(matrix), self.features), dtype="float64")
        parts = _row_ranges(len(matrix))
        if len(parts) == 1:
            self.flat.explain(matrix, phi)
        else:  # the kernel releases the GIL: one thread per core, disjoint rows
            with ThreadPoolExecutor(len(parts), thread_name_prefix="tree-shap") as pool:
                list(pool.map(lambda r: self.flat.explain(matrix[r], phi[r]), parts))
        if not base:
            return phi, None
        margin = self.booster.inplace_predict(matrix, predict_type="margin")
        base = np.asarray(margin, dtype="float64") - phi.sum(axis=1)
        return phi, base


PARALLEL_ROWS = 20_000  # below this, one thread: starting more costs more than it saves


def _row_ranges(rows: int) -> list[slice]:
    threads = min(os.cpu_count() or 1, max(1, rows // PARALLEL_ROWS))
    edges = np.linspace(0, rows, threads + 1).astype("int64")
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


@dataclass(frozen=True)
class _Unit:
    """What the kernel walks: one leaf, or two sibling leaves merged. Siblings test the same
    features under the same conditions but the last, their parent's split, so their bits differ
    only in that split's feature: one table indexed by the shared bits plus the parent's
    direction holds both leaves' values added, and a row pays for one leaf instead of two."""

    features: np.ndarray
    conditions: tuple[tuple[tuple[int, bool], ...], ...]  # per bit, as in _Leaf
    table: np.ndarray  # (bit patterns, features): with `split`, twice the patterns of `bits`
    split: int  # the parent node whose direction is the extra bit; -1 for a lone leaf


def _units(tree: _Tree) -> list[_Unit]:
    """The tree's leaves, sibling leaves merged, in the leaves' order."""
    children: dict[int, list[_Leaf]] = {}
    for leaf in tree.leaves:
        if leaf.last is not None:
            children.setdefault(leaf.last[0], []).append(leaf)
    units = []
    for leaf in tree.leaves:
        siblings = children.get(leaf.last[0], []) if leaf.last is not None else []
        if len(siblings) != 2:
            table = np.column_stack(leaf.columns) if leaf.columns else np.zeros((1, 0))
            units.append(_Unit(leaf.features, leaf.conditions, table, -1))
        elif leaf is siblings[0]:
            left, right = sorted(siblings, key=lambda s: not s.last[1])
            units.append(_siblings(left, right))
    return units


def _siblings(left: _Leaf, right: _Leaf) -> _Unit:
    node = left.last[0]
    # The parent's feature: its bit holds for the left leaf when the earlier conditions on
    # it hold (A) and the row goes left, for the right leaf when A holds and it goes right.
    k = next(i for i, c in enumerate(left.conditions) if c[-1] == (node, True))
    conditions = (*left.conditions[:k], left.conditions[k][:-1], *left.conditions[k + 1 :])
    ours, theirs = np.column_stack(left.columns), np.column_stack(right.columns)
    patterns = np.arange(len(ours))  # bit k here is A
    cleared = patterns & ~(1 << k)
    goes_right = ours[cleared] + theirs[patterns]
    goes_left = ours[patterns] + theirs[cleared]
    return _Unit(left.features, conditions, np.concatenate([goes_right, goes_left]), node)


@dataclass(frozen=True)
class _Flattened:
    """All trees' split nodes and leaves (lone or merged: `_Unit`) as flat arrays for the
    kernel. Unit u tests `bits[u]` distinct features; bit k holds when every condition
    `(cond_node, cond_left)[u, k, :]` holds (node -1 ends the list), and bit `bits[u]` when
    the row goes left at node `split[u]` (if not -1); its SHAP values for bit pattern p are
    `table[offsets[u] + p * depth + k]`, credited to feature `leaf_feature[u, k]`."""

    node_feature: np.ndarray
    node_threshold: np.ndarray
    node_default_left: np.ndarray
    internal: np.ndarray  # the nodes that split (a leaf's direction is never asked)
    bits: np.ndarray
    split: np.ndarray
    cond_node: np.ndarray
    cond_left: np.ndarray
    leaf_feature: np.ndarray
    offsets: np.ndarray
    table: np.ndarray
    depth: int

    @classmethod
    def of(cls, trees: list[_Tree], features: int) -> _Flattened:
        firsts = _first_nodes(trees)
        units = [(unit, first) for tree, first in zip(trees, firsts, strict=True)
                 for unit in _units(tree)]  # fmt: skip
        depth = max([len(unit.features) for unit, _ in units] + [1])
        width = max([len(c) for unit, _ in units for c in unit.conditions] + [1])
        cond_node = np.full((len(units), depth, width), -1, dtype="int64")
        cond_left = np.zeros((len(units), depth, width), dtype=bool)
        leaf_feature = np.zeros((len(units), depth), dtype="int64")
        bits = np.zeros(len(units), dtype="int64")
        split = np.full(len(units), -1, dtype="int64")
        offsets = np.zeros(len(units), dtype="int64")
        tables, size = [], 0
        for index, (unit, first) in enumerate(units):
            bits[index] = len(unit.features)
            if unit.split >= 0:
                split[index] = first + unit.split
            leaf_feature[index, : len(unit.features)] = unit.features
            for k, conditions in enumerate(unit.conditions):
                for c, (node, goes_left) in enumerate(conditions):
                    cond_node[index, k, c] = first + node
                    cond_left[index, k, c] = goes_left
            padded = np.zeros((len(unit.table), depth))
            padded[:, : unit.table.shape[1]] = unit.table
            offsets[index], size = size, size + padded.size
            tables.append(padded.ravel())
        return cls(
            node_feature=np.concatenate([t.split_feature for t in trees]).astype("int64"),
            node_threshold=np.concatenate([t.threshold for t in trees]).astype("float32"),
            node_default_left=np.concatenate([t.default_left for t in trees]).astype(bool),
            internal=np.concatenate(
                [t.internal + first for t, first in zip(trees, firsts, strict=True)]
            ).astype("int64"),
            bits=bits,
            split=split,
            cond_node=cond_node,
            cond_left=cond_left,
            leaf_feature=leaf_feature,
            offsets=offsets,
            table=np.concatenate(tables) if tables else np.zeros(0),
            depth=depth,
        )

    def explain(self, matrix: np.ndarray, phi: np.ndarray) -> None:
        """Add each row's SHAP values into `phi` (rows x features, float64)."""
        _explain_rows(
            matrix, self.node_feature, self.node_threshold, self.node_default_left,
            self.internal, self.bits, self.split, self.cond_node, self.cond_left,
            self.leaf_feature, self.offsets, self.table, self.depth, phi,
        )  # fmt: skip


def _first_nodes(trees: list[_Tree]) -> list[int]:
    """Each tree's first node in the concatenated node arrays."""
    sizes = [len(tree.split_feature) for tree in trees]
    return [int(x) for x in np.cumsum([0, *sizes[:-1]])]


BLOCK_ROWS = 256  # rows walked together: each leaf's arrays are read once per block


@numba.njit(cache=True, nogil=True)
def _explain_rows(
    matrix, node_feature, node_threshold, node_default_left, internal, bits, split, cond_node,
    cond_left, leaf_feature, offsets, table, depth, phi,
):  # fmt: skip
    nodes, rows, block = len(node_feature), matrix.shape[0], BLOCK_ROWS
    goes_left = np.empty((nodes, block), dtype=np.bool_)
    satisfied = np.empty(block, dtype=np.bool_)
    pattern = np.empty(block, dtype=np.int64)
    local = np.zeros((phi.shape[1], block), dtype=np.float64)  # feature-major: rows contiguous
    values = np.empty((matrix.shape[1], block), dtype=matrix.dtype)  # the block, feature-major
    for first in range(0, rows, block):
        n = min(block, rows - first)
        for r in range(n):
            for feature in range(matrix.shape[1]):
                values[feature, r] = matrix[first + r, feature]
        # Which way each row goes at every split node (missing: the node's default).
        for node in internal:
            feature, threshold = node_feature[node], node_threshold[node]
            for r in range(n):
                value = values[feature, r]
                goes_left[node, r] = (
                    node_default_left[node] if np.isnan(value) else value < threshold
                )
        local[:, :n] = 0.0
        # Leaf by leaf, tree by tree: each row's sums are added in this order, whatever the
        # block, so a row's values never depend on the rows scored beside it.
        for leaf in range(len(bits)):
            pattern[:n] = 0
            for k in range(bits[leaf]):
                satisfied[:n] = True
                for c in range(cond_node.shape[2]):
                    node = cond_node[leaf, k, c]
                    if node < 0:
                        break
                    wanted = cond_left[leaf, k, c]
                    for r in range(n):
                        satisfied[r] &= goes_left[node, r] == wanted
                for r in range(n):
                    if satisfied[r]:
                        pattern[r] |= 1 << k
            node = split[leaf]
            if node >= 0:  # merged siblings: which of the two the row takes
                for r in range(n):
                    if goes_left[node, r]:
                        pattern[r] |= 1 << bits[leaf]
            start = offsets[leaf]
            for k in range(bits[leaf]):
                feature = leaf_feature[leaf, k]
                for r in range(n):
                    local[feature, r] += table[start + pattern[r] * depth + k]
        for feature in range(phi.shape[1]):
            for r in range(n):
                phi[first + r, feature] += local[feature, r]


def _parse_tree(tree: dict) -> _Tree:
    left = np.asarray(tree["left_children"])
    right = np.asarray(tree["right_children"])
    feature = np.asarray(tree["split_indices"])
    condition = np.asarray(tree["split_conditions"], dtype="float32")
    default_left = np.asarray(tree["default_left"], dtype=bool)
    cover = np.asarray(tree["sum_hessian"], dtype="float64")
    if any(int(t) != 0 for t in tree.get("split_type", [])):
        raise ValueError("categorical splits are not supported by this explainer")
    leaves = []
    # Depth-first walk: each leaf with its path of (node, goes_left) steps.
    stack: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if left[node] == -1:
            leaves.append(_leaf(path, float(condition[node]), feature, cover, left, right))
            continue
        stack.append((int(right[node]), [*path, (node, False)]))
        stack.append((int(left[node]), [*path, (node, True)]))
    internal = np.flatnonzero(left != -1)
    return _Tree(feature, condition, default_left, internal, tuple(leaves))


def _leaf(path, value: float, feature, cover, left, right) -> _Leaf:
    distinct: dict[int, list[tuple[int, bool]]] = {}
    zero: dict[int, float] = {}
    for node, goes_left in path:
        j = int(feature[node])
        child = left[node] if goes_left else right[node]
        distinct.setdefault(j, []).append((node, goes_left))
        zero[j] = zero.get(j, 1.0) * cover[child] / cover[node]
    features = np.asarray(list(distinct), dtype="int64")
    z = np.asarray([zero[j] for j in distinct], dtype="float64")
    table = _table(value, z)
    columns = tuple(np.ascontiguousarray(table[:, k]) for k in range(len(z)))
    last = path[-1] if path else None
    return _Leaf(features, tuple(tuple(c) for c in distinct.values()), columns, last)


def _table(value: float, z: np.ndarray) -> np.ndarray:
    """SHAP value of each path feature for every bit pattern of `o` (bit k = feature k's o):
    value * (o_i - z_i) * sum over S of |S|!(m-|S|-1)!/m! * prod_S o_j * prod_rest z_j.
    The sum over S is the weighted coefficients of prod over j != i of (z_j + o_j t)."""
    m = len(z)
    o = ((np.arange(1 << m)[:, None] >> np.arange(m)) & 1).astype("float64")
    weights = np.asarray([factorial(s) * factorial(m - s - 1) / factorial(m) for s in range(m)])
    table = np.empty((1 << m, m), dtype="float64")
    for i in range(m):
        poly = np.zeros((1 << m, m), dtype="float64")  # coefficient of t^s, per pattern
        poly[:, 0] = 1.0
        for k in (k for k in range(m) if k != i):
            poly[:, 1:] = poly[:, 1:] * z[k] + poly[:, :-1] * o[:, k : k + 1]
            poly[:, 0] *= z[k]
        table[:, i] = value * (o[:, i] - z[i]) * (poly @ weights)
    return table
