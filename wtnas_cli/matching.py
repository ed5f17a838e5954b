"""Shape-sequence matching: which provider tensor seeds which receiver tensor.

The paper casts tensor mapping as string matching over shape sequences (section IV-A):
- LP, the longest common prefix, O(min(n, m));
- LCS, the longest common subsequence by dynamic programming, O(nm).
Both return index pairs (provider_index, receiver_index), increasing in both coordinates.
Our LCS first takes the common prefix and then solves the rest, so LP's pairs are always a
subset of LCS's pairs (not only fewer of them), and the result is still a longest one.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

Pairs = list[tuple[int, int]]


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
