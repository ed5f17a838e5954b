"""Shape-sequence matching: which provider tensor seeds which receiver tensor.

The paper casts tensor mapping as string matching over shape sequences (section IV-A):
- LP, the longest common prefix, O(min(n, m));
- LCS, the longest common subsequence by dynamic programming, O(nm).
Both return index pairs (provider_index, receiver_index), increasing in both coordinates.
Our LCS first takes the common prefix and then solves the rest, so LP's pairs are always a
subset of LCS's pairs (not only fewer of them), and the result is still a longest one.

The paper compares shapes only, so a dense bias can seed a BatchNorm variance of the same length
(a negative variance makes the model output NaN). wtnas' default matchers compare (role class,
shape): a kernel seeds only a kernel, a bias a bias, each BatchNorm vector its own kind. The
paper's rule stays available as `lp-shape` / `lcs-shape`. `lcs-slice` additionally pairs tensors
of the same role class and rank but different sizes, between the exact pairs; the evaluator
copies their overlapping block (see transfer.py).

A matcher is any callable `match(provider, receiver) -> pairs`. It receives shape sequences,
unless it is marked with `@takes_specs`: then it receives `TensorSpec` sequences (layer, op,
role, shape). `apply_matcher` calls either kind and checks what it returns.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterable, Sequence

import numpy as np

from ..errors import WtnasError
from ..model.shapes import TensorSpec

Pairs = list[tuple[int, int]]

# Roles that may seed one another: each BatchNorm statistic is its own class, because copying a
# mean (or a bias) into a variance can make it negative. Roles not listed are their own class.
ROLE_CLASSES = {"kernel": "kernel", "bias": "bias", "gamma": "bn_scale", "beta": "bn_shift",
                "moving_mean": "bn_mean", "moving_variance": "bn_variance"}


class MatchError(WtnasError):
    """A matcher returned pairs that cannot be copied (outside the sequences, unequal shapes, ...)."""


def role_class(role: str) -> str:
    return ROLE_CLASSES.get(role, role)


def takes_specs(fn: Callable | None = None, *, partial: bool = False):
    """Mark a matcher as taking `TensorSpec` sequences instead of shape sequences; with
    `partial=True` it may pair tensors of the same rank but different sizes (block copies)."""
    def mark(f: Any) -> Callable:   # Any: a function object takes the two marker attributes
        f.takes_specs = True
        f.partial = partial
        return f
    return mark(fn) if fn is not None else mark


def role_keys(specs: Sequence[TensorSpec]) -> list[tuple]:
    return [(role_class(s.role), s.shape) for s in specs]


SAME_MODEL = ":same-model"   # Job.matcher for a model restarting from its own checkpoint (not a plugin)


@takes_specs()
def match_same(provider: Sequence[TensorSpec], receiver: Sequence[TensorSpec]) -> Pairs:
    """A model and its own checkpoint (`wtnas topk` warm starts): every tensor to the same place,
    or nothing if the architectures differ in any tensor."""
    same = len(provider) == len(receiver) and all(
        p.shape == r.shape and role_class(p.role) == role_class(r.role) for p, r in zip(provider, receiver))
    if not same:
        raise MatchError("the checkpoint does not hold this architecture's tensors")
    return [(i, i) for i in range(len(receiver))]


def apply_matcher(match: Callable, provider: Sequence[TensorSpec], receiver: Sequence[TensorSpec],
                  name: str = "matcher") -> Pairs:
    """Call a matcher of either kind and check its pairs once (any iterable is accepted): both
    indices inside the sequences, each receiver tensor at most once, equal shapes (same rank for
    a partial matcher). Raises MatchError naming the first bad pair."""
    if getattr(match, "takes_specs", False):
        raw: Iterable = match(list(provider), list(receiver))
    else:
        raw = match([s.shape for s in provider], [s.shape for s in receiver])
    partial = bool(getattr(match, "partial", False))
    try:
        pairs = [(int(i), int(j)) for i, j in raw]
    except (TypeError, ValueError) as exc:
        raise MatchError(f"matcher {name!r} must return (provider_index, receiver_index) pairs ({exc})") from None
    seen: set[int] = set()
    for i, j in pairs:
        if not (0 <= i < len(provider) and 0 <= j < len(receiver)):
            raise MatchError(f"matcher {name!r} returned pair ({i}, {j}) outside the sequences "
                             f"({len(provider)} and {len(receiver)} tensors)")
        if j in seen:
            raise MatchError(f"matcher {name!r} maps two provider tensors onto receiver tensor {j}")
        seen.add(j)
        p, r = provider[i].shape, receiver[j].shape
        if p != r and not (partial and len(p) == len(r)):
            need = "the same rank" if partial else "equal shapes"
            raise MatchError(f"matcher {name!r} paired provider tensor {i} {p} with receiver tensor {j} {r}; "
                             f"pairs need {need}")
    return pairs


def lp_length(provider: Sequence[Hashable], receiver: Sequence[Hashable]) -> int:
    n = min(len(provider), len(receiver))
    i = 0
    while i < n and provider[i] == receiver[i]:
        i += 1
    return i


def match_lp(provider: Sequence[Hashable], receiver: Sequence[Hashable]) -> Pairs:
    return [(i, i) for i in range(lp_length(provider, receiver))]


def match_lcs(provider: Sequence[Hashable], receiver: Sequence[Hashable]) -> Pairs:
    """Longest common subsequence containing the longest common prefix."""
    p = lp_length(provider, receiver)
    pairs = [(i, i) for i in range(p)]
    a, b = provider[p:], receiver[p:]
    if not a or not b:
        return pairs
    codes: dict[Hashable, int] = {}
    ai = np.fromiter((codes.setdefault(s, len(codes)) for s in a), dtype=np.int64, count=len(a))
    bi = np.fromiter((codes.setdefault(s, len(codes)) for s in b), dtype=np.int64, count=len(b))
    n, m = len(ai), len(bi)
    eq = ai[:, None] == bi[None, :]
    table = np.zeros((n + 1, m + 1), dtype=np.int32)
    # Row recurrence L[i][j] = max(L[i-1][j], L[i][j-1], L[i-1][j-1] + eq) unrolled along j:
    # L[i][1:] is the running maximum of max(L[i-1][1:], L[i-1][:-1] + eq[i-1]).
    any_match = eq.any(axis=1)
    for i in range(1, n + 1):
        prev = table[i - 1]
        if not any_match[i - 1]:
            table[i] = prev
            continue
        row = np.maximum(prev[1:], prev[:-1] + eq[i - 1])
        np.maximum.accumulate(row, out=table[i, 1:])
    tail: Pairs = []
    i, j = n, m
    rows = table.tolist()
    while i > 0 and j > 0:
        if ai[i - 1] == bi[j - 1] and rows[i][j] == rows[i - 1][j - 1] + 1:
            tail.append((i - 1 + p, j - 1 + p))
            i -= 1
            j -= 1
        elif rows[i - 1][j] == rows[i][j]:
            i -= 1
        else:
            j -= 1
    tail.reverse()
    return pairs + tail


def match_none(provider: Sequence[Hashable], receiver: Sequence[Hashable]) -> Pairs:
    """The baseline: transfer nothing, train from scratch."""
    return []


@takes_specs
def match_lp_roles(provider: Sequence[TensorSpec], receiver: Sequence[TensorSpec]) -> Pairs:
    """LP over (role class, shape)."""
    return match_lp(role_keys(provider), role_keys(receiver))


@takes_specs
def match_lcs_roles(provider: Sequence[TensorSpec], receiver: Sequence[TensorSpec]) -> Pairs:
    """LCS over (role class, shape)."""
    return match_lcs(role_keys(provider), role_keys(receiver))


@takes_specs(partial=True)
def match_lcs_slice(provider: Sequence[TensorSpec], receiver: Sequence[TensorSpec]) -> Pairs:
    """Role-aware LCS, then, in every gap between its pairs, an LCS over (role class, rank): the
    exact pairs are kept (so this moves at least as much as `lcs`) and same-role tensors whose
    sizes differ (Dense 64 -> 128 units, a kernel whose input width changed) are paired too."""
    exact = match_lcs_roles(provider, receiver)
    loose_p = [(role_class(s.role), len(s.shape)) for s in provider]
    loose_r = [(role_class(s.role), len(s.shape)) for s in receiver]
    out: Pairs = []
    prev_i = prev_j = -1
    for i, j in exact + [(len(provider), len(receiver))]:
        gap = match_lcs(loose_p[prev_i + 1:i], loose_r[prev_j + 1:j])
        out += [(a + prev_i + 1, b + prev_j + 1) for a, b in gap]
        if i < len(provider):
            out.append((i, j))
        prev_i, prev_j = i, j
    return out
