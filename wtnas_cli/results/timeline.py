"""Best model quality against cumulative wall time, from `wtnas run` to the recommended model: what
a user waits for, and what it gets at each moment.

The search part is the best candidate so far by its search score (validation: nothing else is
measured during a search). The top-K part starts when the search ends and steps each time a top-K
model finishes: the model `wtnas export` would pick among those finished so far (chosen by
validation, `comparison.recommended`), quoted by its held-out test objective where the run has a
test split. Its last point is the run's time to model (search + top-K checks and training).
"""

from __future__ import annotations

from dataclasses import dataclass

from .comparison import recommended
from .runs import RunReport


@dataclass(frozen=True)
class QualityPoint:
    t_s: float          # seconds since the search started (its wall time, then top-K's)
    value: float        # the objective of the best model so far
    split: str          # "validation" (search scores; top-K models without a test score) or "test"
    candidate_id: int
    phase: str          # "search" or "topk"


def quality_timeline(report: RunReport, mode: str = "warm") -> list[QualityPoint]:
    """Points where the best model so far changes (and one per top-K model finishing)."""
    points: list[QualityPoint] = []
    best = None
    for row in sorted(report.ok, key=lambda r: (r["elapsed_s"] or 0.0, r["id"])):
        if best is None or row["score"] > best:
            best = row["score"]
            points.append(QualityPoint(row["elapsed_s"] or 0.0, row["score"], "validation", row["id"], "search"))
    trained = report.trained.get(mode)
    rows = [r for r in (trained.topk if trained else []) if r.get("finished_at") is not None]
    if not rows or trained is None:
        return points
    rows.sort(key=lambda r: (r["finished_at"], r["candidate_id"]))
    # the last model finishes at the run's time to model; the others before it by their finish gaps
    end = report.search_wall_s + (trained.wall_s if trained.wall_s is not None
                                   else rows[-1]["finished_at"] - min(r["finished_at"] - (r["wall_s"] or 0.0)
                                                                      for r in rows))
    for k, row in enumerate(rows):
        pick = recommended(rows[:k + 1])
        assert pick is not None   # rows of a finished top-K have their objective
        test = pick.get("objective_test")
        t = max(report.search_wall_s, end - (rows[-1]["finished_at"] - row["finished_at"]))
        points.append(QualityPoint(t, test if test is not None else pick["objective_final"],
                                   "test" if test is not None else "validation", pick["candidate_id"], "topk"))
    return points


def time_to_reach(points: list[QualityPoint], target: float, split: str = "test") -> float | None:
    """The first time the best model so far reaches `target` on `split` (None: never)."""
    return next((p.t_s for p in points if p.split == split and p.value >= target), None)
