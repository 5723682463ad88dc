"""Exact path-dependent tree SHAP for an XGBoost booster, vectorized over rows.

The reasons on a candidate list are tree SHAP values; XGBoost's own `pred_contribs` computes
them row by row at a few thousand rows per second here, which made explaining a landed file's
candidates cost several times its scoring. The values are the same computed another way:

For path-dependent tree SHAP the value of a coalition S is a sum over leaves of
`leaf value x product over the leaf's path features j of (o_j if j in S else z_j)`, where
`o_j` is 1 when the row satisfies every split on feature j along the path and `z_j` is the
share of training cover that followed those splits. Shapley values are linear in the game, and
a leaf's values depend on the row only through which way it goes at the leaf's path nodes. So
the leaves under a node, taken together, depend on the row only through its directions at that
node's ancestors and at the split nodes below it: a few bits. Each such group of leaves gets
one table (a row per pattern of those bits) computed once, and scoring a row is a comparison
per split node, then a bit pattern and a lookup per group, in one compiled kernel. Tests hold
the result equal to `pred_contribs` (float32 rounding apart).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from math import factorial

import numpy as np
import xgboost as xgb

from affluent_assets.lib.kernels import numba, over_cores


@dataclass(frozen=True)
class _Leaf:
    features: np.ndarray  # the distinct features on the path, in path order
    # For each distinct feature, the path's conditions on it: (node, goes_left) pairs.
    conditions: tuple[tuple[tuple[int, bool], ...], ...]
    columns: tuple[np.ndarray, ...]  # per path feature: SHAP contribution by bit pattern


@dataclass(frozen=True)
class _Tree:
    split_feature: np.ndarray
    threshold: np.ndarray  # float32, as the booster compares
    default_left: np.ndarray
    internal: np.ndarray  # the nodes that split
    left: np.ndarray  # children by node, -1 for a leaf
    right: np.ndarray
    leaves: dict[int, _Leaf]  # by node


class TreeExplainer:
    """Exact tree SHAP values of a fitted booster (binary logistic, numeric splits).

    Every tree's leaves are gathered into groups (`_Group`: the leaves under one node), each
    group's values tabulated once by the row's directions at its few nodes, and one compiled
    kernel (numba, no Python per row or group) walks them for each row: a row costs a
    comparison per split node and a table lookup per group, so one row takes well under a
    millisecond and millions take seconds. Rows are independent, so large inputs are split
    over the cores; each row's sums are added in the same order (tree by tree, group by group)
    whatever the split, so a row gets the same values alone or in a batch of millions."""

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
        over_cores(lambda rows: self.flat.explain(matrix[rows], phi[rows]), len(matrix))
        if not base:
            return phi, None
        margin = self.booster.inplace_predict(matrix, predict_type="margin")
        base = np.asarray(margin, dtype="float64") - phi.sum(axis=1)
        return phi, base


# A group's table has a row per pattern of its bits and a column per feature it credits:
# 10 bits keep it within 80 KB (a depth-6 tree makes eight groups, a depth-4 tree two).
GROUP_BITS = 10
MAX_PATH_NODES = 16  # a leaf's path is a group's bits at least: deeper trees are refused


@dataclass(frozen=True)
class _Group:
    """What the kernel walks: the leaves under one node. Their values depend on the row only
    through its direction at each of `nodes` (the node's ancestors and the split nodes under
    it), so `table[p, k]` holds the leaves' SHAP values added for feature `features[k]`, where
    bit i of the pattern p says the row goes left at `nodes[i]`."""

    nodes: np.ndarray
    features: np.ndarray
    table: np.ndarray  # (2 ** len(nodes), len(features))


def _groups(tree: _Tree) -> list[_Group]:
    """The tree's leaves in groups, each the leaves under the highest node whose ancestors and
    split nodes below fit in GROUP_BITS, left to right."""
    groups: list[_Group] = []
    stack: list[tuple[int, list[int]]] = [(0, [])]
    while stack:
        node, ancestors = stack.pop()
        below = _split_nodes_under(tree, node)
        if tree.left[node] == -1 or len(ancestors) + len(below) <= GROUP_BITS:
            groups.append(_group(tree, [*ancestors, *below], _leaves_under(tree, node)))
            continue
        stack.append((int(tree.right[node]), [*ancestors, node]))
        stack.append((int(tree.left[node]), [*ancestors, node]))
    return groups


def _split_nodes_under(tree: _Tree, node: int) -> list[int]:
    """`node` and the split nodes below it (none if it is a leaf), depth first."""
    if tree.left[node] == -1:
        return []
    return [
        node,
        *_split_nodes_under(tree, int(tree.left[node])),
        *_split_nodes_under(tree, int(tree.right[node])),
    ]


def _leaves_under(tree: _Tree, node: int) -> list[_Leaf]:
    if tree.left[node] == -1:
        return [tree.leaves[node]]
    return _leaves_under(tree, int(tree.left[node])) + _leaves_under(tree, int(tree.right[node]))


def _group(tree: _Tree, nodes: list[int], leaves: list[_Leaf]) -> _Group:
    """The leaves' values added, for every pattern of the row's directions at `nodes`."""
    bit = {node: i for i, node in enumerate(nodes)}
    features = list(dict.fromkeys(int(j) for leaf in leaves for j in leaf.features))
    column = {j: k for k, j in enumerate(features)}
    patterns = np.arange(1 << len(nodes))
    table = np.zeros((len(patterns), len(features)), dtype="float64")
    for leaf in leaves:
        own = np.zeros(len(patterns), dtype="int64")  # the leaf's bits: o_j per path feature
        for k, conditions in enumerate(leaf.conditions):
            holds = np.ones(len(patterns), dtype=bool)
            for node, goes_left in conditions:
                holds &= ((patterns >> bit[node]) & 1).astype(bool) == goes_left
            own |= holds.astype("int64") << k
        for k, j in enumerate(leaf.features):
            table[:, column[int(j)]] += leaf.columns[k][own]
    return _Group(np.asarray(nodes, dtype="int64"), np.asarray(features, dtype="int64"), table)


@dataclass(frozen=True)
class _Flattened:
    """All trees' split nodes and leaf groups (`_Group`) as flat arrays for the kernel. Group
    g reads the row's directions at `group_node[g, :bits[g]]` (global node numbers) and adds
    `table[offsets[g] + p * width[g] + k]` to feature `group_feature[g, k]` for k < width[g]."""

    node_feature: np.ndarray
    node_threshold: np.ndarray
    node_default_left: np.ndarray
    internal: np.ndarray  # the nodes that split (a leaf's direction is never asked)
    bits: np.ndarray
    group_node: np.ndarray
    width: np.ndarray
    group_feature: np.ndarray
    offsets: np.ndarray
    table: np.ndarray

    @classmethod
    def of(cls, trees: list[_Tree], features: int) -> _Flattened:
        firsts = _first_nodes(trees)
        groups = [(group, first) for tree, first in zip(trees, firsts, strict=True)
                  for group in _groups(tree)]  # fmt: skip
        most_bits = max([len(group.nodes) for group, _ in groups] + [1])
        widest = max([len(group.features) for group, _ in groups] + [1])
        group_node = np.full((len(groups), most_bits), -1, dtype="int64")
        group_feature = np.zeros((len(groups), widest), dtype="int64")
        bits = np.zeros(len(groups), dtype="int64")
        width = np.zeros(len(groups), dtype="int64")
        offsets = np.zeros(len(groups), dtype="int64")
        size = 0
        for index, (group, first) in enumerate(groups):
            bits[index], width[index] = len(group.nodes), len(group.features)
            group_node[index, : len(group.nodes)] = group.nodes + first
            group_feature[index, : len(group.features)] = group.features
            offsets[index], size = size, size + group.table.size
        tables = [group.table.ravel() for group, _ in groups]
        return cls(
            node_feature=np.concatenate([t.split_feature for t in trees]).astype("int64"),
            node_threshold=np.concatenate([t.threshold for t in trees]).astype("float32"),
            node_default_left=np.concatenate([t.default_left for t in trees]).astype(bool),
            internal=np.concatenate(
                [t.internal + first for t, first in zip(trees, firsts, strict=True)]
            ).astype("int64"),
            bits=bits,
            group_node=group_node,
            width=width,
            group_feature=group_feature,
            offsets=offsets,
            table=np.concatenate(tables) if tables else np.zeros(0),
        )

    def explain(self, matrix: np.ndarray, phi: np.ndarray) -> None:
        """Add each row's SHAP values into `phi` (rows x features, float64)."""
        _explain_rows(
            matrix, self.node_feature, self.node_threshold, self.node_default_left,
            self.internal, self.bits, self.group_node, self.width, self.group_feature,
            self.offsets, self.table, phi,
        )  # fmt: skip


def _first_nodes(trees: list[_Tree]) -> list[int]:
    """Each tree's first node in the concatenated node arrays."""
    sizes = [len(tree.split_feature) for tree in trees]
    return [int(x) for x in np.cumsum([0, *sizes[:-1]])]


BLOCK_ROWS = 256  # rows walked together: each group's table is read once per block


@numba.njit(cache=True, nogil=True)
def _explain_rows(
    matrix, node_feature, node_threshold, node_default_left, internal, bits, group_node, width,
    group_feature, offsets, table, phi,
):  # fmt: skip
    nodes, rows, block = len(node_feature), matrix.shape[0], BLOCK_ROWS
    goes_left = np.empty((nodes, block), dtype=np.uint8)
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
            default = 1 if node_default_left[node] else 0
            for r in range(n):
                value = values[feature, r]
                goes_left[node, r] = default if np.isnan(value) else (1 if value < threshold else 0)
        local[:, :n] = 0.0
        # Group by group, tree by tree: each row's sums are added in this order, whatever the
        # block, so a row's values never depend on the rows scored beside it.
        for group in range(len(bits)):
            pattern[:n] = 0
            for i in range(bits[group]):
                node = group_node[group, i]
                for r in range(n):
                    pattern[r] |= np.int64(goes_left[node, r]) << i
            start, w = offsets[group], width[group]
            for k in range(w):
                feature = group_feature[group, k]
                for r in range(n):
                    local[feature, r] += table[start + pattern[r] * w + k]
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
    leaves = {}
    # Depth-first walk: each leaf with its path of (node, goes_left) steps.
    stack: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if len(path) > MAX_PATH_NODES:  # a leaf's own path is a group's bits at least
            raise ValueError(f"trees deeper than {MAX_PATH_NODES} are not supported")
        if left[node] == -1:
            leaves[node] = _leaf(path, float(condition[node]), feature, cover, left, right)
            continue
        stack.append((int(right[node]), [*path, (node, False)]))
        stack.append((int(left[node]), [*path, (node, True)]))
    internal = np.flatnonzero(left != -1)
    return _Tree(feature, condition, default_left, internal, left, right, leaves)


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
    return _Leaf(features, tuple(tuple(c) for c in distinct.values()), columns)


def _table(value: float, z: np.ndarray) -> np.ndarray:
    """SHAP value of each path feature for every bit pattern of `o` (bit k = feature k's o):
    value * (o_i - z_i) * sum over S of |S|!(m-|S|-1)!/m! * prod_S o_j * prod_rest z_j.
    The sum over S is the weighted coefficients of prod over j != i of (z_j + o_j t).
    Compiled: a booster has thousands of leaves, each a table of at most 2**depth rows."""
    m = len(z)
    weights = np.asarray([factorial(s) * factorial(m - s - 1) / factorial(m) for s in range(m)])
    return _table_kernel(float(value), np.ascontiguousarray(z, dtype="float64"), weights)


@numba.njit(cache=True, nogil=True)
def _table_kernel(value, z, weights):
    m = len(z)
    table = np.empty((1 << m, m), dtype=np.float64)
    poly = np.empty(max(m, 1), dtype=np.float64)  # coefficient of t^s
    for pattern in range(1 << m):
        for i in range(m):
            poly[:] = 0.0
            poly[0] = 1.0
            for k in range(m):
                if k != i:  # times (z_k + o_k t), highest power first: each reads the old value
                    o = (pattern >> k) & 1
                    for power in range(m - 1, 0, -1):
                        poly[power] = poly[power] * z[k] + poly[power - 1] * o
                    poly[0] *= z[k]
            total = 0.0
            for power in range(m):
                total += poly[power] * weights[power]
            table[pattern, i] = value * (((pattern >> i) & 1) - z[i]) * total
    return table
