"""Which candidates `wtnas topk` trains: the best by search score, but neither near-copies of one
another nor architectures that only ever worked on inherited weights.

- **Diversity**: in score order, a candidate within `min_distance` - 1 changed nodes of one
  already selected is skipped (default 2: no two of the top-K differ in a single node), so the
  top-K is not K variants of one lineage differing in an activation or a dropout rate.
- **Verification** (`--verify all`; the default `known` uses only the checks the run already
  has, at no cost): a candidate is *checked*: trained from scratch with the search's seed and
  budget (the same job as its lineage-bias control, whose score is reused; a candidate that
  trained from scratch in the search is its own check). One whose check does not exceed the
  lower quartile of the run's from-scratch scores (candidates that inherited nothing, and the
  controls) is flagged *inherited-only* and replaced by the next candidate. "Exceed", not
  "reach": where a quarter of the from-scratch candidates stay at chance after the search's
  budget (nt3like), the quartile *is* chance, and a check at chance must not pass. A check
  longer than the search's budget (`--check-epochs`) must also clear the score of a model that
  learned nothing (problem.constant_score) by a quarter of the way to the run's best
  from-scratch score: on digits the quartile sat at chance and a model at 0.114 after 3 epochs
  passed and never learned. Not for the search's own budget: on nt3like one-epoch checks of
  0.52-0.60 (chance 0.517) belonged to models that reach 0.85-0.91, and flagging them let worse
  ones in (docs/benchmarks.md).
- **Lineages** (opt-in): at most `max_per_lineage` models share a weight lineage (lineage.py: one
  random initialization their inherited tensors all go back to), and/or at least `min_lineages`
  lineages are in the top-K (a candidate of a lineage already in it is skipped while the places
  left are only enough for the lineages still missing: the best lineage keeps every other
  place). When the run has too few lineages, the rest is filled in score order. Off by default:
  under regularized evolution one founder's lineage takes over the population, so the other
  lineages hold only early random-start candidates, and forcing them in cost from-scratch
  accuracy and top-K epochs (docs/benchmarks.md); with islands each island keeps one.
- **Ranking** (opt-in `rank="check"`, transfer-aware): twice K candidates pass the rules above,
  then the K with the best from-scratch checks are kept, so a score earned on inherited weights
  does not decide the order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

MIN_REFERENCE = 5   # from-scratch scores needed to derive a threshold
LEARNED = 0.25      # a longer check must clear "learned nothing" by this share of the way to the run's best
RANKS = ("score", "check")
VERIFY_MODES = ("known", "all", "off")
CHECK_POOL = 2      # rank="check": how many times K candidates are checked before the K best are kept


def scratch_reference(candidates: list[dict], controls: list[dict]) -> list[float]:
    """From-scratch scores at the search's budget: candidates that inherited nothing, and the
    search's controls."""
    own = [c["score"] for c in candidates if c["status"] == "ok" and not c.get("n_transferred")]
    return own + [c["score"] for c in controls if c["status"] == "ok" and (c.get("origin") or "search") == "search"]


def verify_threshold(reference: Sequence[float], floor: float | None = None, learned: bool = False) -> float | None:
    """The lower quartile of the run's from-scratch scores, never below `floor` (the score of a
    model that learned nothing, problem.constant_score) and, for checks longer than the search's
    budget (`learned`), never below `learned_bar`; None with too few scores. The floor matters
    where some from-scratch candidates predict the minority class: their quartile then falls
    under chance, and a check at chance would pass."""
    if len(reference) < MIN_REFERENCE:
        return None
    quartile = float(np.percentile(reference, 25))
    if floor is None:
        return quartile
    return max(quartile, learned_bar(reference, floor) if learned else float(floor))


def learned_bar(reference: Sequence[float], floor: float) -> float:
    """`floor` plus a quarter (LEARNED) of the way from it to the best from-scratch score."""
    return float(floor) + LEARNED * max(0.0, max(reference) - float(floor))


def stored_checks(rows: list[dict]) -> dict[int, float]:
    """Longer checks (RunStore.checks) as check scores: a failed one is -inf (always flagged)."""
    return {r["candidate_id"]: (r["score"] if r["status"] == "ok" and r["score"] is not None else float("-inf"))
            for r in rows if r["status"] != "pending"}


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
    capped: list[dict] = field(default_factory=list)        # skipped: their lineage already had its share
                                                             # (--max-per-lineage, --min-lineages)


def select(ranked: list[dict], k: int, *, min_distance: int, distance: Callable, checks: dict[int, float],
           threshold: float | None, need_checks: bool | None = None, founder: dict[int, int] | None = None,
           max_per_lineage: int = 0, min_lineages: int = 0) -> Selection:
    """Greedy pass in score order; candidates without a check score stop the pass once enough of
    them (with those selected) could fill the top-K, so checks run in batches. `need_checks`
    (default: when there is a threshold) makes every pick wait for its check; without it, a
    check that exists still flags a candidate (`--verify known`). A failed check (-inf) is
    always flagged. Candidates held back by the lineage rules are used only if the pass
    ends short of K."""
    need_checks = threshold is not None if need_checks is None else need_checks
    out = Selection()
    lineage = (lambda r: founder.get(r["id"], r["id"])) if founder else (lambda r: r["id"])

    def full() -> bool:
        return len(out.selected) + len(out.to_check) >= k

    def lineage_full(r: dict, picked: list[dict]) -> bool:
        """Over the cap, or taking a place that a missing lineage needs."""
        same = sum(lineage(s) == lineage(r) for s in picked)
        missing = min_lineages - len({lineage(s) for s in picked})
        return bool(max_per_lineage and same >= max_per_lineage) or (same > 0 and k - len(picked) - 1 < missing)

    def consider(r: dict, lineage_rules: bool) -> None:
        picked = out.selected + out.to_check
        if any(distance(s["arch_seq"], r["arch_seq"]) < min_distance for s in picked):
            out.similar.append(r)
            return
        if lineage_rules and lineage_full(r, picked):
            out.capped.append(r)
            return
        if need_checks and r["id"] not in checks:
            out.to_check.append(r)
            return
        if r["id"] in checks and (need_checks or threshold is not None):   # a check we have always counts
            check = checks[r["id"]]
            if not math.isfinite(check) or (threshold is not None and check <= threshold):
                out.flagged.append({**r, "check": check})
                return
        out.selected.append(r)

    for r in ranked:
        if full():
            return out
        consider(r, True)
    if full():
        return out
    deferred, out.capped = out.capped, []
    for r in deferred:             # too few lineages in the run: fill the rest in score order
        if full():
            break
        consider(r, False)
    return out


def rerank_by_check(pool: list[dict], checks: dict[int, float]) -> list[dict]:
    """rank="check": the pool ordered by from-scratch check, search score breaking ties."""
    return sorted(pool, key=lambda r: (-checks[r["id"]], -r["score"], r["id"]))


def flag_reason(flag: dict, choice: dict) -> str:
    """Why a candidate was flagged inherited-only, in words."""
    if not math.isfinite(flag["check"]):
        return "its from-scratch check failed (non-finite model)"
    return f"from scratch {flag['check']:.4f} ≤ {choice['threshold']:.4f}"


def lineage_rule_words(choice: dict) -> str:
    """The lineage rules a stored selection applied, and what they skipped, in words."""
    cap, least = choice.get("max_per_lineage", 0), choice.get("min_lineages", 0)
    rules = ([f"at most {cap} per lineage"] if cap else []) + ([f"at least {least} lineages"] if least else [])
    if not rules:
        return "no lineage rule"
    return f"{' and '.join(rules)} while the run has enough, {len(choice['capped'])} skipped for it"


def choice_checks(choice: dict | None) -> dict[int, float]:
    """The checks a stored selection used, at its own budget (JSON keys back to ids)."""
    return {int(c): v for c, v in (choice or {}).get("checks", {}).items()}


def threshold_words(choice: dict) -> str:
    """What a check had to exceed, in words (wtnas topk, wtnas report)."""
    floor, quartile = choice.get("floor"), choice.get("quartile")
    words = f"{choice['threshold']:.4f}, the lower quartile of the run's {choice['reference_n']} from-scratch scores"
    if floor is not None and choice["threshold"] <= floor:
        words = (f"{choice['threshold']:.4f}, the score of a model that learned nothing (above the lower quartile of "
                 f"the run's {choice['reference_n']} from-scratch scores)")
    elif floor is not None and quartile is not None and choice["threshold"] > quartile:   # a longer check's bar
        words = (f"{choice['threshold']:.4f}, a quarter of the way from a model that learned nothing ({floor:.4f}) to "
                 f"the run's best from-scratch score (above the lower quartile {quartile:.4f} of its "
                 f"{choice['reference_n']} from-scratch scores)")
    epochs = choice.get("check_epochs")
    return words + (f"; checks of {epochs} epoch(s)" if epochs else "")


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
