"""Which candidates `wtnas topk` trains: the best by search score, but neither near-copies of one
another nor architectures that only ever worked on inherited weights.

- **Diversity**: in score order, a candidate within `min_distance` - 1 changed nodes of one
  already selected is skipped (default 2: no two of the top-K differ in a single node), so the
  top-K is not K variants of one lineage differing in an activation or a dropout rate.
- **Verification**: a candidate is *checked*: trained from scratch with the search's seed and
  budget (the same job as its lineage-bias control, whose score is reused; a candidate that
  trained from scratch in the search is its own check). One whose check falls below the lower
  quartile of the run's from-scratch scores (candidates that inherited nothing, and the controls)
  is flagged *inherited-only* and replaced by the next candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

MIN_REFERENCE = 5   # from-scratch scores needed to derive a threshold


def scratch_reference(candidates: list[dict], controls: list[dict]) -> list[float]:
    """From-scratch scores at the search's budget: candidates that inherited nothing, and the
    search's controls."""
    own = [c["score"] for c in candidates if c["status"] == "ok" and not c.get("n_transferred")]
    return own + [c["score"] for c in controls if c["status"] == "ok" and (c.get("origin") or "search") == "search"]


def verify_threshold(reference: Sequence[float]) -> float | None:
    """The lower quartile of the run's from-scratch scores (None with too few of them)."""
    return float(np.percentile(reference, 25)) if len(reference) >= MIN_REFERENCE else None


def known_checks(candidates: list[dict], controls: list[dict]) -> dict[int, float]:
    """Check scores already measured: a from-scratch candidate's own score, any finished control."""
    checks = {c["id"]: c["score"] for c in candidates if c["status"] == "ok" and not c.get("n_transferred")}
    checks.update({c["candidate_id"]: c["score"] for c in controls if c["status"] == "ok"})
    return checks


@dataclass
class Selection:
    selected: list[dict] = field(default_factory=list)
    to_check: list[dict] = field(default_factory=list)      # need a check before they can be selected
    flagged: list[dict] = field(default_factory=list)       # inherited-only: check below the threshold
    similar: list[dict] = field(default_factory=list)       # skipped: too close to a selected one


def select(ranked: list[dict], k: int, *, min_distance: int, distance: Callable, checks: dict[int, float],
           threshold: float | None) -> Selection:
    """Greedy pass in score order; candidates without a check score stop the pass once enough of
    them (with those selected) could fill the top-K, so checks run in batches."""
    out = Selection()
    for r in ranked:
        if len(out.selected) + len(out.to_check) >= k:
            break
        near = [s for s in out.selected + out.to_check if distance(s["arch_seq"], r["arch_seq"]) < min_distance]
        if near:
            out.similar.append(r)
            continue
        if threshold is not None:
            if r["id"] not in checks:
                out.to_check.append(r)
                continue
            if checks[r["id"]] < threshold:
                out.flagged.append({**r, "check": checks[r["id"]]})
                continue
        out.selected.append(r)
    return out


def families(rows: list[dict], distance: Callable) -> int:
    """Groups of architectures linked by chains of distance <= 1 (near-copies count once)."""
    parent = list(range(len(rows)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i
    for i in range(len(rows)):
        for j in range(i):
            if distance(rows[i]["arch_seq"], rows[j]["arch_seq"]) <= 1:
                parent[root(i)] = root(j)
    return len({root(i) for i in range(len(rows))})
