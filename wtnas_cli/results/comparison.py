"""Runs of one problem side by side: each run's top-K against the baseline's (epochs, speed-up,
objective, Kendall tau)."""

from __future__ import annotations

import math
import statistics

from ..util.stats import geometric_mean
from .runs import RunReport


NO_BASELINE = "no baseline run: compare with one made by `wtnas run --matcher none`"


def comparison(reports: list[RunReport], mode: str = "warm") -> list[dict]:
    """One row per run against the baseline (the first run that transfers nothing). Without one
    the ratios and differences are NaN, never a run against itself (`NO_BASELINE` says why)."""
    base = next((r for r in reports if r.is_baseline), None)
    base_set = base.trained.get(mode) if base else None
    base_gm = geometric_mean(base_set.epochs) if base_set and base_set.epochs else float("nan")
    # kept epochs are means, not geometric means: 0 (a model that kept its start) is a real value
    base_kept = statistics.mean(base_set.kept_epochs) if base_set and base_set.kept_epochs else float("nan")
    base_obj = statistics.mean(base_set.objective("objective_final")) if base_set and base_set.topk else float("nan")
    rows = []
    for r in reports:
        t = r.trained.get(mode)
        gm = geometric_mean(t.epochs) if t and t.epochs else float("nan")
        kept = statistics.mean(t.kept_epochs) if t and t.kept_epochs else float("nan")
        obj = statistics.mean(t.objective("objective_final")) if t and t.topk else float("nan")
        stop = statistics.mean(t.objective("objective_at_stop")) if t and t.topk else float("nan")
        tau = t.tau if t else (float("nan"), 0, "")
        test = statistics.mean(t.objective("objective_test")) if t and t.objective("objective_test") else float("nan")
        pick = recommended(t.topk) if t else None
        rows.append({
            "run": r.name, "scheme": r.scheme, "baseline": r is base, "candidates": len(r.ok), "failed": r.failed,
            "mean_score_2nd_half": r.mean_score_second_half, "transfer_share": r.transfer_share,
            "topk_n": len(t.topk) if t else 0, "epochs_gmean": gm,
            "speedup_vs_baseline": base_gm / gm if gm and not math.isnan(gm) else float("nan"),
            "kept_epochs_mean": kept,
            "kept_speedup_vs_baseline": base_kept / kept if kept and not math.isnan(kept) else float("nan"),
            "objective_at_stop": stop, "objective_final": obj, "objective_diff_vs_baseline": obj - base_obj,
            "tau": tau[0], "tau_n": tau[1], "tau_over": tau[2], "objective_test": test,
            "recommended_id": pick["candidate_id"] if pick else None,
            "recommended_val": pick["objective_final"] if pick else float("nan"),
            "recommended_test": _or_nan(pick["objective_test"]) if pick else float("nan"),
            # from `wtnas run` to the recommended model: the search, then top-K's checks and training
            "time_to_model_s": r.search_wall_s + t.wall_s if t and t.wall_s is not None else float("nan"),
            "search_s": r.search_wall_s, "topk_checks_s": _or_nan(t.checks_s) if t else float("nan"),
            "topk_train_s": t.wall_s - (t.checks_s or 0.0) if t and t.wall_s is not None else float("nan"),
        })
    return rows


def params_stats(rows: list[dict]) -> dict[str, float]:
    p = [r["num_params"] for r in rows if r["num_params"]]
    if not p:
        return {}
    return {"mean": statistics.mean(p), "std": statistics.stdev(p) if len(p) > 1 else 0.0, "max": max(p), "min": min(p)}


def recommended(rows: list[dict]) -> dict | None:
    """The trained model `wtnas export` hands a user by default: the best validation objective
    (ties: the lower id). Chosen by validation only; its test objective is what it is worth."""
    ok = [r for r in rows if r.get("objective_final") is not None]
    return min(ok, key=lambda r: (-r["objective_final"], r["candidate_id"])) if ok else None


def _or_nan(value) -> float:
    return float("nan") if value is None else value
