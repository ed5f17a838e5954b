"""Rankings a user can trust: baseline vs LCS vs LCS + verified top-K (vs LCS + `--rank check`),
side by side on digits, nt3like and real MNIST-5k, over several seeds.

    python benchmarks/bench_rankings.py --seeds 5             # the numbers docs/benchmarks.md quotes
    python benchmarks/bench_rankings.py --seeds 2 --quick     # a few minutes

Per problem and seed, regularized-evolution searches: the baseline (`--matcher none`), LCS (with
the default `--controls`) and LCS on 3 islands (`-o evolution.islands=3`, equal or a main island
and two satellites; only when a selection asks for it). Then `wtnas topk` on them under several
selections, each warm-started (epochs to converge) and from scratch (the architecture's own worth):

- `baseline`: the baseline's top-K by search score (no transfer, nothing to verify);
- `lcs`: LCS's top-K by search score alone (`--no-verify --min-distance 1 --max-per-lineage 0`),
  i.e. wtnas before verified top-K;
- `lcs+verified`: `--verify all` (every top-K candidate checked from scratch), `--min-distance 2`;
- `lcs+check`: the same plus `--rank check` (transfer-aware ranking, opt-in);
- `lcs+verified+cap`, `lcs+check+cap`: the same with `--max-per-lineage 2` (opt-in);
- `lcs+verified+long`: `--verify all --check-epochs 3` (the search's epoch + the top-K patience);
- `islands+verified`, `islands+verified+cap`: `--verify all`, without and with
  `--max-per-lineage 2`, on the islands search; `islands+verified+min3`: `--min-lineages 3`
  instead of the cap (the best island keeps 3 places);
- `satellites+verified+min3`: the same on a search whose first island holds half the population
  (`-o evolution.main_share=0.5`) and breeds half the children, beside two satellites;
  `main70+verified+long+min3`: a main island of 70%, and checks of 3 epochs (`--check-epochs 3`).

A top-K model *does not learn from random weights* when its from-scratch objective (full top-K
training) stays below chance + 25% of the way from chance to 1 (chance: the validation set's
majority-class rate). The tau sample (random candidates retrained from scratch) measures how well
search scores rank architectures. Raw numbers go to benchmarks/results/rankings-<date>.json;
`tables.py` renders docs/benchmarks.md's tables from it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import mnist5k  # noqa: E402
import nt3like  # noqa: E402

from wtnas_cli.run.config import RunConfig  # noqa: E402
from wtnas_cli.results.lineage import count_lineages, founders_and_depths  # noqa: E402
from wtnas_cli.plugins.manager import default_plugins  # noqa: E402
from wtnas_cli.results.runs import load_run  # noqa: E402
from wtnas_cli.search.scheduler import run_search  # noqa: E402
from wtnas_cli.results.selection import choice_checks, known_checks  # noqa: E402
from wtnas_cli.util.stats import (bootstrap_ratio_ci, geometric_mean, kendall_tau, kept_epoch, mean_std,
                                  permutation_pvalue)
from wtnas_cli.run.store import RunStore, selection_key  # noqa: E402
from wtnas_cli.results.topk import TopKConfig, run_topk  # noqa: E402

ISLANDS = 3      # the islands search: 3 islands, so a top-5 at most 2 per lineage spans >= 3 lineages
MAIN_SHARE = 0.5  # the satellites search: a main island of half the population, two satellites of a quarter
LONG_CHECK = RunConfig().epochs + TopKConfig().patience   # --check-epochs of the "+long" selections
SEARCHES = {     # name: RunConfig settings (and the run directory's prefix)
    "none": dict(matcher="none"),
    "lcs": dict(matcher="lcs"),
    "islands": dict(matcher="lcs", options={"evolution": {"islands": ISLANDS}}),
    "satellites": dict(matcher="lcs", options={"evolution": {"islands": ISLANDS, "main_share": MAIN_SHARE}}),
    "main70": dict(matcher="lcs", options={"evolution": {"islands": ISLANDS, "main_share": 0.7}}),
}
SELECTIONS = {   # name: (search, TopKConfig options, modes trained)
    "baseline": ("none", dict(verify=False, min_distance=1, max_per_lineage=0), ("warm", "scratch")),
    "lcs": ("lcs", dict(verify=False, min_distance=1, max_per_lineage=0), ("warm", "scratch")),
    "lcs+verified": ("lcs", dict(verify="all"), ("warm", "scratch")),
    "lcs+check": ("lcs", dict(rank="check", verify="all"), ("scratch",)),   # judged from scratch
    "lcs+verified+cap": ("lcs", dict(verify="all", max_per_lineage=2), ("warm", "scratch")),
    "lcs+check+cap": ("lcs", dict(rank="check", verify="all", max_per_lineage=2), ("scratch",)),
    # checks as long as the search's epochs + the top-K patience: they see a model that learns in
    # its first epoch from scratch and then collapses, which top-K early stopping would keep
    "lcs+verified+long": ("lcs", dict(verify="all", check_epochs=LONG_CHECK),
                          ("warm", "scratch")),
    # LCS on islands (evolution -o islands=3): one lineage per island
    "islands+verified": ("islands", dict(verify="all"), ("warm", "scratch")),
    "islands+verified+cap": ("islands", dict(verify="all", max_per_lineage=2), ("warm", "scratch")),
    # at least one model per island; the best lineage keeps the other places (a cap splits them 2 + 2 + 1)
    "islands+verified+min3": ("islands", dict(verify="all", min_lineages=ISLANDS), ("warm", "scratch")),
    # a main island and two satellites (-o evolution.main_share), at least one model per island
    "satellites+verified+min3": ("satellites", dict(verify="all", min_lineages=ISLANDS), ("warm", "scratch")),
    # the same with checks of 3 epochs (nt3like's models that learn for one epoch from scratch and
    # then collapse)
    "satellites+verified+long+min3": ("satellites", dict(verify="all", min_lineages=ISLANDS,
                                                         check_epochs=LONG_CHECK),
                                      ("warm", "scratch")),
    # a main island of 70% (its lineage closer to one population's), checks of 3 epochs (nt3like's
    # models that learn for one epoch from scratch and then collapse)
    "main70+verified+long+min3": ("main70", dict(verify="all", min_lineages=ISLANDS,
                                                 check_epochs=LONG_CHECK),
                                  ("warm", "scratch")),
}
# the tau sample: once per search, with these selections
TAU_FROM = ("baseline", "lcs", "islands+verified+cap", "satellites+verified+min3", "main70+verified+long+min3")
LEARNS = 0.25                    # share of the way from chance to 1 a from-scratch model must reach


def budgets(quick: bool) -> dict[str, dict]:
    """Candidates per search and top-K settings per problem (MNIST-5k candidates cost ~1.5 s each;
    60 of them, so that each of the islands search's 3 islands breeds 16 children). Top-K up to
    20 epochs everywhere, as the paper: a lower cap (MNIST-5k had 8) stops baseline models before
    they converge and so understates the epoch ratio. Tau samples of 16 random candidates (a
    digits or nt3like model trains from scratch in ~1 s); none on MNIST-5k (~10 s per model)."""
    common = {"k": 5, "max_epochs": 15 if quick else 20, "tau_sample": 4 if quick else 16,
              "stop_reference": TopKConfig().stop_reference}
    return {"digits": dict(common, max_evals=40 if quick else 150, population=12 if quick else 20,
                           sample=6 if quick else 10),
            "nt3like": dict(common, max_evals=40 if quick else 120, population=12 if quick else 20,
                            sample=6 if quick else 10),
            "mnist5k": dict(common, max_evals=30 if quick else 60, population=10 if quick else 12,
                            sample=5 if quick else 6, tau_sample=0)}


def problem_options(name: str, data_dir: Path) -> dict:
    return {"digits": lambda: {"problem": "digits"}, "nt3like": lambda: nt3like.run_options(data_dir),
            "mnist5k": lambda: mnist5k.run_options(data_dir)}[name]()


def chance(options: dict) -> float:
    """The validation set's majority-class rate."""
    import numpy as np

    plugins = default_plugins()
    problem = plugins.registry.create("problem", options["problem"],
                                      **{k: v for k, v in options.items() if k != "problem"})
    y = np.asarray(problem.data().y_val).reshape(-1)
    return float(np.bincount(y.astype(int)).max() / len(y))


def one_seed(root: Path, options: dict, seed: int, b: dict, learns_at: float, only: list[str] | None = None,
             keep_searches: bool = False) -> dict:
    """The searches a seed's selections need, and every selection's top-K on them."""
    out: dict = {"seed": seed, "search": {}, "selections": {}}
    run_searches(root, out, options, b, only, keep_searches)
    run_selections(root, out, b, learns_at, only)
    return out


def run_searches(root: Path, out: dict, options: dict, b: dict, only: list[str] | None = None,
                 keep_searches: bool = False) -> None:
    """The searches the selections (of `only`) need that a seed does not have yet."""
    seed = out["seed"]
    needed = {SELECTIONS[n][0] for n in (only or SELECTIONS)}
    for name in [n for n in SEARCHES if n in needed and n not in out["search"]]:
        run_dir = root / f"{name}-{seed}"
        cfg = RunConfig(seed=seed, max_evals=b["max_evals"], population=b["population"], sample=b["sample"],
                        workers=2, run_dir=str(run_dir), **SEARCHES[name], **options)
        t = time.perf_counter()
        if not (keep_searches and _finished(run_dir) >= b["max_evals"]):
            run_search(cfg, overwrite=True)
        out["search"][name] = search_numbers(run_dir, time.perf_counter() - t)


def _finished(run_dir: Path) -> int:
    """Candidates a run directory has finished (0 without a run)."""
    if not (run_dir / "wtnas.sqlite").is_file():
        return 0
    store = RunStore(run_dir / "wtnas.sqlite")
    try:
        return sum(r["status"] in ("ok", "failed") for r in store.candidates())
    finally:
        store.close()


def run_selections(root: Path, out: dict, b: dict, learns_at: float, only: list[str] | None = None) -> None:
    """Every selection (of `only`) a seed does not have yet: all after its searches; with
    --reuse, the ones added since (their searches made first by `run_searches`)."""
    seed = out["seed"]
    for name, (matcher, extra, modes) in SELECTIONS.items():
        if name in out["selections"] or (only and name not in only):
            continue
        run_dir = root / f"{matcher}-{seed}"
        sel: dict = {}
        for mode in modes:
            sel[mode] = train_selection(run_dir, name, mode, seed, b, extra, learns_at)
        out["selections"][name] = sel


def train_selection(run_dir: Path, name: str, mode: str, seed: int, b: dict, extra: dict, learns_at: float,
                    stop_reference: str | None = None) -> dict:
    """One `wtnas topk` call of a selection (results written before the stop reference existed
    were trained under Keras' first-epoch reference)."""
    cfg = TopKConfig(k=b["k"], from_scratch=mode == "scratch", max_epochs=b["max_epochs"], seed=seed,
                     tau_sample=b["tau_sample"] if mode == "scratch" and name in TAU_FROM else 0,
                     stop_reference=stop_reference or b.get("stop_reference", "first-epoch"), **extra)
    t = time.perf_counter()
    summary = run_topk(run_dir, cfg)
    return dict(trained_numbers(run_dir, summary, time.perf_counter() - t, learns_at),
                stop_reference=cfg.reference)


def retrain_warm(root: Path, out: dict, b: dict, learns_at: float) -> None:
    """Warm top-Ks again under the start reference, on the same searches and selections; the
    first-epoch results stay beside them (`warm_first_epoch`) for the comparison."""
    for name, sel in out["selections"].items():
        if "warm" in sel and sel["warm"].get("stop_reference", "first-epoch") == "first-epoch":
            search, extra, _ = SELECTIONS[name]
            sel["warm_first_epoch"] = sel["warm"]
            sel["warm"] = train_selection(root / f"{search}-{out['seed']}", name, "warm", out["seed"], b, extra,
                                          learns_at, stop_reference="start")


def _legacy_names(seed: dict) -> None:
    """Results written while the lineage cap was the default carry it under the plain names."""
    for name in ("lcs+verified", "lcs+check"):
        sel = seed["selections"].get(name)
        if sel and any(part["choice"].get("max_per_lineage") for part in sel.values()):
            seed["selections"][name + "+cap"] = seed["selections"].pop(name)


def search_numbers(run_dir: Path, wall_s: float) -> dict:
    rep = load_run(run_dir)
    founder, depth = founders_and_depths(rep.candidates)
    ok = rep.ok
    stats = rep.control_stats
    return {"wall_s": wall_s, "candidates": len(ok), "lineages": count_lineages([r["id"] for r in ok], founder),
            "depth_mean": statistics.mean(depth[r["id"]] for r in ok) if ok else 0.0,
            "mean_score_2nd_half": rep.mean_score_second_half, "median_params": statistics.median(
                r["num_params"] for r in ok) if ok else None,
            "controls": stats.n, "lift": stats.lift, "lift_ci": stats.lift_ci, "tau_controls": stats.tau,
            "control_cost": rep.control_cost}


def trained_numbers(run_dir: Path, summary, wall_s: float, learns_at: float) -> dict:
    """One `wtnas topk` call: its top-K and tau sample, with lineage and check scores."""
    store = RunStore(run_dir / "wtnas.sqlite")
    try:
        rows, controls, long_checks = store.candidates(), store.controls(), store.checks()
        meta = store.get_meta(selection_key(summary.mode, summary.settings)) or {}
    finally:
        store.close()
    founder, depth = founders_and_depths(rows)
    checks = known_checks(rows, controls)
    checks.update(choice_checks(summary.choice))   # longer checks, at the selection's own budget
    trained = {r["candidate_id"]: r for r in summary.rows}
    top_ids = list(meta.get("topk", []))

    def model(cid: int) -> dict:
        t = trained[cid]
        return {"id": cid, "score": t["estimated_score"], "founder": founder.get(cid, cid), "depth": depth.get(cid, 0),
                "check": checks.get(cid), "num_params": t["num_params"], "status": t["status"],
                "epochs_to_converge": t["epochs_to_converge"], "converged": t["converged"],
                "objective_final": t["objective_final"], "wall_s": t["wall_s"],
                "learns": t["objective_final"] is not None and t["objective_final"] >= learns_at}
    return {"wall_s": wall_s, "topk": [model(c) for c in top_ids if c in trained],
            "tau": [model(c) for c in meta.get("tau", []) if c in trained],
            "choice": summary.choice, "lineages": count_lineages(top_ids, founder),
            "verify_worker_s": verify_cost(controls, long_checks, top_ids, summary.choice)}


def verify_cost(controls: list[dict], long_checks: list[dict], top_ids: list[int], choice: dict) -> float:
    """Worker seconds of the top-K checks this selection needed: those of the models it chose
    and of the ones it flagged, where no search control or from-scratch candidate stood in
    (checks longer than the search's budget are all new)."""
    needed = set(top_ids) | {f["id"] for f in choice.get("flagged", [])}
    longer = [c for c in long_checks if c["epochs"] == choice.get("check_epochs")]
    if longer:
        return sum(c["wall_s"] or 0.0 for c in longer if c["candidate_id"] in needed)
    return sum(c["wall_s"] or 0.0 for c in controls if c.get("origin") == "verify" and c["candidate_id"] in needed)


def refresh_costs(root: Path, seeds: list[dict]) -> None:
    """Recompute every selection's verification cost from its run's store (results written
    before `verify_cost` counted every check in the run)."""
    for seed in seeds:
        for name, sel in seed["selections"].items():
            if name not in SELECTIONS:   # a selection measured and since removed (refound+verified+cap)
                continue
            store = RunStore(root / f"{SELECTIONS[name][0]}-{seed['seed']}" / "wtnas.sqlite")
            try:
                controls, long_checks = store.controls(), store.checks()
            finally:
                store.close()
            for part in sel.values():
                part["verify_worker_s"] = verify_cost(controls, long_checks, [m["id"] for m in part["topk"]],
                                                      part["choice"])
                part.pop("verify_worker_s_total", None)


def aggregate(seeds: list[dict], patience: int) -> dict:
    """Per selection: mean ± std over seeds, pooled top-K values, and tests against the baseline."""
    out: dict = {}
    present = [n for n in SELECTIONS if all(n in s["selections"] for s in seeds)]
    for name in present:
        modes = SELECTIONS[name][2]
        warm = [s["selections"][name].get("warm") or s["selections"][name]["scratch"] for s in seeds]
        scratch = [s["selections"][name]["scratch"] for s in seeds]
        ok = lambda ms: [m for m in ms if m["status"] == "ok"]
        trained_warm = [w for w in warm] if "warm" in modes else []     # epochs mean something warm-started only
        epochs, kept = _epochs(trained_warm, patience)
        before = [s["selections"][name].get("warm_first_epoch") for s in seeds]
        epochs_before, kept_before = _epochs(before, patience) if all(before) and trained_warm else ([], [])
        scratch_obj = [m["objective_final"] for s in scratch for m in ok(s["topk"])]
        taus = [kendall_tau([m["score"] for m in s["tau"]], [m["objective_final"] for m in s["tau"]])
                for s in scratch if len(s["tau"]) >= 2]
        out[name] = {
            "epochs": epochs, "epochs_gmean": geometric_mean(epochs), "kept": kept,
            "kept_mean": statistics.mean(kept) if kept else None, "epochs_first_epoch": epochs_before,
            "kept_first_epoch": kept_before,
            "scratch_objective": scratch_obj,
            "scratch_objective_per_seed": _objective_per_seed(scratch),
            "warm_objective_per_seed": _objective_per_seed(trained_warm) if trained_warm else None,
            "warm_objective_first_epoch_per_seed": _objective_per_seed(before) if all(before) and trained_warm else None,
            "does_not_learn": sum(not m["learns"] for s in scratch for m in s["topk"]),
            "models": sum(len(s["topk"]) for s in scratch),
            "lineages_per_seed": [w["lineages"] for w in warm],
            "distinct_per_seed": [len({m["id"] for m in w["topk"]}) for w in warm],
            "params_per_seed": [statistics.median(m["num_params"] for m in w["topk"]) for w in warm if w["topk"]],
            "flagged_per_seed": [len(w["choice"].get("flagged", [])) for w in warm],
            "tau_scratch": mean_std(taus) if taus else None, "tau_n": [len(s["tau"]) for s in scratch],
            "verify_cost_share": _verify_share(seeds, name),
        }
    base = out["baseline"]
    # the most any selection could show: all its models stopping as early as the reference allows
    # (Keras' first-epoch reference: kept epoch 1, stop at patience + 1; the start: 0 and patience)
    rule = next((s["selections"]["baseline"]["warm"].get("stop_reference") for s in seeds), None) or "first-epoch"
    base["ratio_ceiling"] = ({"kept": base["kept_mean"], "stop": base["epochs_gmean"] / (patience + 1)}
                             if rule == "first-epoch" else {"kept": float("inf"), "stop": base["epochs_gmean"] / patience})
    for name in present:
        if name == "baseline":
            continue
        cur = out[name]
        if cur["epochs"]:
            cur["epoch_ratio"] = bootstrap_ratio_ci(base["epochs"], cur["epochs"])
            cur["kept_ratio"] = bootstrap_ratio_ci(base["kept"], cur["kept"], geometric=False)   # kept can be 0
        if cur["epochs_first_epoch"] and base["epochs_first_epoch"]:
            cur["epoch_ratio_first_epoch"] = bootstrap_ratio_ci(base["epochs_first_epoch"], cur["epochs_first_epoch"])
            cur["kept_ratio_first_epoch"] = bootstrap_ratio_ci(base["kept_first_epoch"], cur["kept_first_epoch"],
                                                               geometric=False)
        cur["p_scratch_objective"] = permutation_pvalue(base["scratch_objective"], cur["scratch_objective"])
        cur["scratch_objective_diff"] = statistics.mean(cur["scratch_objective"]) - statistics.mean(base["scratch_objective"])
    for s in seeds:   # the price of verification next to the top-K training it guards
        v = s["selections"]["lcs+verified"]
        s["verify_cost"] = {"checks_worker_s": v["warm"]["verify_worker_s"],
                            "topk_worker_s": sum((m["wall_s"] or 0.0) for m in v["warm"]["topk"] + v["scratch"]["topk"])}
    costs = [s["verify_cost"]["checks_worker_s"] / s["verify_cost"]["topk_worker_s"] for s in seeds
             if s["verify_cost"]["topk_worker_s"]]
    out["verify_cost_share"] = mean_std(costs) if costs else None
    lcs = [s["search"]["lcs"] for s in seeds]
    out["controls"] = {"lift": [x["lift"] for x in lcs], "lift_ci": [x["lift_ci"] for x in lcs],
                       "tau": [x["tau_controls"] for x in lcs], "n": [x["controls"] for x in lcs],
                       "cost_share": mean_std([x["control_cost"] for x in lcs])}
    out["search"] = {m: {k: mean_std([s["search"][m][k] for s in seeds])
                         for k in ("mean_score_2nd_half", "median_params", "lineages", "depth_mean", "wall_s")}
                     for m in SEARCHES if all(m in s["search"] for s in seeds)}
    estimate = lineage_estimate(seeds, present, patience, out)
    if estimate:
        out["lineage_estimate"] = estimate
    return out


def _multi_lineage(name: str) -> bool:
    """A selection that spreads an islands search's top-K over lineages."""
    search, extra, modes = SELECTIONS[name]
    return ("islands" in SEARCHES[search].get("options", {}).get("evolution", {}) and "warm" in modes
            and bool(extra.get("max_per_lineage") or extra.get("min_lineages")))


def lineage_estimate(seeds: list[dict], present: list[str], patience: int, agg: dict) -> dict | None:
    """How fast the top-K's models from lineages other than the best converge (the best lineage:
    that of the selection's best search score), pooled over the multi-lineage selections, and
    the epoch ratios of a top-K with ISLANDS lineages whose other K - ISLANDS + 1 models converged
    like verified LCS's (one deep lineage, the best case measured) and whose ISLANDS - 1 others
    like those pooled models: stop epochs as geometric means, kept epochs as arithmetic means, as
    the ratios themselves. An estimate, not a bound: the pooled models vary by search."""
    other = []
    for name in [n for n in present if _multi_lineage(n)]:
        for s in seeds:
            top = [m for m in s["selections"][name]["warm"]["topk"] if m["status"] == "ok"]
            if top:
                best = max(top, key=lambda m: m["score"])["founder"]
                other += [m for m in top if m["founder"] != best]
    lcs = agg.get("lcs+verified", {})
    if not other or not lcs.get("epochs"):
        return None
    stop, kept = _epochs([{"topk": other}], patience)
    stop_g, kept_m = geometric_mean(stop), statistics.mean(kept)
    k, n_other = len(seeds[0]["selections"]["baseline"]["warm"]["topk"]), ISLANDS - 1
    log_mix = ((k - n_other) * math.log(geometric_mean(lcs["epochs"])) + n_other * math.log(stop_g)) / k
    kept_mix = ((k - n_other) * statistics.mean(lcs["kept"]) + n_other * kept_m) / k
    base = agg["baseline"]
    ratio = lambda a, b: a / b if b else float("inf")
    return {"n_other": len(other), "other_stop_gmean": stop_g, "other_kept_mean": kept_m,
            "other_stop_ratio": base["epochs_gmean"] / stop_g, "other_kept_ratio": ratio(base["kept_mean"], kept_m),
            "stop": base["epochs_gmean"] / math.exp(log_mix), "kept": ratio(base["kept_mean"], kept_mix)}


def _objective_per_seed(parts: list[dict]):
    """Mean ± std over seeds of the top-K's mean objective (one `wtnas topk` call per seed)."""
    return mean_std([statistics.mean(m["objective_final"] for m in p["topk"] if m["status"] == "ok")
                     for p in parts if any(m["status"] == "ok" for m in p["topk"])])


def _epochs(warm: list[dict], patience: int) -> tuple[list[int], list[int]]:
    """Stop epochs and kept epochs of warm-started top-K models (pooled over seeds)."""
    models = [m for w in warm for m in w["topk"] if m["status"] == "ok"]
    return ([m["epochs_to_converge"] for m in models],
            [kept_epoch(m["epochs_to_converge"], bool(m["converged"]), patience) for m in models])


def _verify_share(seeds: list[dict], name: str):
    """A selection's checks (worker seconds) per second of the top-K training they guard (its
    warm and scratch models), mean ± std over seeds."""
    shares = []
    for s in seeds:
        parts = [part for mode, part in s["selections"][name].items() if mode in ("warm", "scratch")]
        trained = sum((m["wall_s"] or 0.0) for part in parts for m in part["topk"])
        if trained:
            shares.append(parts[0]["verify_worker_s"] / trained)
    return mean_std(shares) if shares else None


def _times(ratio: float) -> str:
    return "unbounded" if ratio == float("inf") else f"{ratio:.2f}x"


def print_problem(name: str, agg: dict) -> None:
    f = lambda ms, d=4: "-" if ms is None else f"{ms[0]:.{d}f} ± {ms[1]:.{d}f}"
    print(f"\n{name}")
    print("  selection        | not learning | lineages/seed | obj. scratch (seed means) | diff, p vs baseline "
          "| kept ratio [CI]        | stop ratio [CI]        | tau scratch")
    for sel in [n for n in SELECTIONS if n in agg]:
        a = agg[sel]
        ratio = lambda r: f"{r[0]:.2f}x [{r[1]:.2f}, {r[2]:.2f}]" if r else "-"
        diff = f"{a['scratch_objective_diff']:+.4f}, p={a['p_scratch_objective']:.3f}" if "p_scratch_objective" in a else "-"
        print(f"  {sel:16} | {a['does_not_learn']:3} of {a['models']:3} | {str(a['lineages_per_seed']):13} | "
              f"{f(a['scratch_objective_per_seed'])} | {diff:19} | {ratio(a.get('kept_ratio')):22} | "
              f"{ratio(a.get('epoch_ratio')):22} | {f(a['tau_scratch'], 3)}"
              + (f" | first-epoch reference: kept {ratio(a['kept_ratio_first_epoch'])}, stop "
                 f"{ratio(a['epoch_ratio_first_epoch'])}" if "kept_ratio_first_epoch" in a else ""), flush=True)
    cap = agg["baseline"].get("ratio_ceiling")
    if cap:
        print(f"  ceiling (every model stopping as early as the reference allows): kept {_times(cap['kept'])}, "
              f"stop {_times(cap['stop'])}")
    lb = agg.get("lineage_estimate")
    if lb:
        print(f"  models of the other lineages ({lb['n_other']}, islands selections): baseline / them, stop "
              f"{lb['other_stop_ratio']:.2f}x, kept {_times(lb['other_kept_ratio'])}; a top-K of {ISLANDS} "
              f"lineages whose best lineage's places converged like verified LCS's: stop {lb['stop']:.2f}x, "
              f"kept {_times(lb['kept'])}")
    c = agg["controls"]
    print(f"  controls (LCS search): lift per seed {[round(x, 3) for x in c['lift']]}, "
          f"tau {[round(x, 2) if x is not None else None for x in c['tau']]}, n {c['n']}, "
          f"cost {f(c['cost_share'], 3)} of search worker time; verification cost {f(agg['verify_cost_share'], 3)} "
          f"of the verified top-K's training", flush=True)


def summarize(results: dict) -> None:
    """Epoch ratios against the baseline, geometric mean over the problems."""
    problems = results["problems"].values()
    for sel, (_, _, modes) in SELECTIONS.items():
        if sel == "baseline" or "warm" not in modes or not all(sel in p["per_selection"] for p in problems):
            continue
        for key in ("kept_ratio", "epoch_ratio", "kept_ratio_first_epoch", "epoch_ratio_first_epoch"):
            if all(key in p["per_selection"][sel] for p in problems):
                ratios = [p["per_selection"][sel][key][0] for p in problems]
                results.setdefault("gmean_over_problems", {}).setdefault(sel, {})[key] = geometric_mean(ratios)
        g = results["gmean_over_problems"][sel]
        print(f"{sel}: baseline/transfer epochs, geometric mean over problems: kept {g['kept_ratio']:.2f}x, "
              f"stop {g['epoch_ratio']:.2f}x" + (f" (first-epoch reference: kept {g['kept_ratio_first_epoch']:.2f}x, "
                                                 f"stop {g['epoch_ratio_first_epoch']:.2f}x)"
                                                 if "kept_ratio_first_epoch" in g else ""))
    if all("lineage_estimate" in p["per_selection"] for p in problems):
        est = {key: geometric_mean([p["per_selection"]["lineage_estimate"][key] for p in problems])
               for key in ("kept", "stop")}
        results["lineage_estimate_gmean"] = est
        print(f"a top-K of {ISLANDS} lineages whose best lineage's places converged like verified LCS's and the "
              f"others like the islands selections' (estimate): kept {est['kept']:.2f}x, stop {est['stop']:.2f}x")


def markdown(results: dict) -> str:
    """docs/benchmarks.md's tables for these results."""
    ms = lambda v, d=3: "—" if v is None else f"{v[0]:.{d}f} ± {v[1]:.{d}f}"
    ratio = lambda r: "—" if not r else f"{r[0]:.2f}x [{r[1]:.2f}, {r[2]:.2f}]"
    out = []
    for name, entry in results["problems"].items():
        agg = entry["per_selection"]
        n = len(entry["seeds"])
        out += [f"**{name}** ({n} seed{'s' if n != 1 else ''}; chance {entry['chance']:.2f}, a model *learns* from scratch at "
                f"≥ {entry['learns_at']:.3f}):", "",
                "| selection | not learning from scratch | lineages per seed | distinct arch. | flagged | "
                "obj. from scratch (seed means) | vs baseline, p | epochs kept, ratio [95% CI] | "
                "epochs at stop, ratio [95% CI] | tau (search score, scratch obj.) |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for sel in [s for s in SELECTIONS if s in agg]:
            a = agg[sel]
            diff = (f"{a['scratch_objective_diff']:+.4f}, p = {a['p_scratch_objective']:.3f}"
                    if "p_scratch_objective" in a else "—")
            first = (f" (first-epoch ref.: {ratio(a['kept_ratio_first_epoch'])}, {ratio(a['epoch_ratio_first_epoch'])})"
                     if "kept_ratio_first_epoch" in a else "")
            out.append(f"| {sel} | {a['does_not_learn']} of {a['models']} | {', '.join(map(str, a['lineages_per_seed']))} "
                       f"| {', '.join(map(str, a['distinct_per_seed']))} | {sum(a['flagged_per_seed'])} "
                       f"| {ms(a['scratch_objective_per_seed'], 4)} | {diff} | {ratio(a.get('kept_ratio'))} "
                       f"| {ratio(a.get('epoch_ratio'))}{first} | {ms(a['tau_scratch'])} |")
        c, srch = agg["controls"], agg["search"]
        cap = agg["baseline"].get("ratio_ceiling")
        out += ["", (f"Largest epoch ratio any selection could show here (all its models stopping as early as the "
                     f"reference allows): kept {_times(cap['kept'])}, stop {_times(cap['stop'])}. " if cap else "")
                  + f"Searches (mean ± std over seeds): score of the 2nd half baseline "
                    f"{ms(srch['none']['mean_score_2nd_half'])}, "
                f"LCS {ms(srch['lcs']['mean_score_2nd_half'])}; median parameters baseline "
                f"{srch['none']['median_params'][0]:,.0f}, LCS {srch['lcs']['median_params'][0]:,.0f}; weight lineages "
                f"among LCS's candidates {ms(srch['lcs']['lineages'], 1)}, mean depth {ms(srch['lcs']['depth_mean'], 1)}. "
                f"Controls (LCS, `--controls 0.1`): lift per seed "
                f"{', '.join(f'{x:+.3f}' for x in c['lift'])}; tau warm vs scratch "
                f"{', '.join('—' if t is None or t != t else f'{t:.2f}' for t in c['tau'])} (n = "
                f"{', '.join(map(str, c['n']))}); cost {ms(c['cost_share'])} of the search's worker time. "
                f"Verification: {ms(agg['verify_cost_share'])} of the verified top-K's training time (warm + scratch)."
                + (f" Islands search ({ISLANDS} islands): score of the 2nd half {ms(srch['islands']['mean_score_2nd_half'])}, "
                   f"weight lineages {ms(srch['islands']['lineages'], 1)}, mean depth "
                   f"{ms(srch['islands']['depth_mean'], 1)}." if "islands" in srch else ""), ""]
    if "gmean_over_problems" in results:
        out.append("Geometric mean over the problems of the epoch ratios (baseline / transfer): " + "; ".join(
            f"{sel}: kept {g['kept_ratio']:.2f}x, stop {g['epoch_ratio']:.2f}x"
            + (f" (first-epoch reference {g['kept_ratio_first_epoch']:.2f}x, {g['epoch_ratio_first_epoch']:.2f}x)"
               if "kept_ratio_first_epoch" in g else "")
            for sel, g in results["gmean_over_problems"].items()) + ".")
    return "\n".join(out)


def merge(paths: list[Path], out_dir: Path) -> dict:
    """One result file from several (e.g. MNIST-5k run on its own budget)."""
    parts = [json.loads(p.read_text()) for p in paths]
    results = {"budgets": {}, "seeds": {}, "learns": LEARNS, "problems": {}, "wall_s": 0.0,
               "merged_from": [str(p) for p in paths]}
    for part in parts:
        for name, entry in part["problems"].items():
            results["problems"][name] = entry
            results["budgets"][name] = part["budgets"][name]
            results["seeds"][name] = len(entry["seeds"])
        results["wall_s"] += part.get("wall_s", 0.0)
    for name, entry in results["problems"].items():
        print_problem(name, entry["per_selection"])
    summarize(results)
    path = out_dir / f"rankings-{time.strftime('%Y-%m-%d')}.json"
    save(path, results)
    print(markdown(results))
    print(f"saved {path}")
    return results


def save(path: Path, results: dict) -> None:
    """Compact JSON: a 5-seed run over three problems stays under 1 MB."""
    path.write_text(json.dumps(results, separators=(",", ":"), default=str))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--mnist-seeds", type=int, help="seeds for mnist5k (its top-K cost ~20 min per seed on 2 cores)")
    ap.add_argument("--quick", action="store_true", help="small budgets (a smoke run)")
    ap.add_argument("--problems", default="digits,nt3like,mnist5k", help="with --reuse: those of its problems "
                    "to add selections to")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--reuse", type=Path, metavar="JSON", help="add the selections missing from this result file, "
                    "on its run directories (under --out/rankings-runs), instead of searching again")
    ap.add_argument("--selections", help=f"comma-separated subset of {', '.join(SELECTIONS)} (baseline, lcs and "
                                         f"lcs+verified are always run)")
    ap.add_argument("--keep-searches", action="store_true",
                    help="reuse finished searches in --out/rankings-runs (a run stopped part-way: its trained "
                         "top-K models are reused too)")
    ap.add_argument("--retrain-warm", action="store_true",
                    help="with --reuse: train every selection's warm top-K again under the start reference "
                         "(`wtnas topk --stop-reference start`), keeping the earlier results beside them")
    ap.add_argument("--merge", type=Path, nargs="+", metavar="JSON",
                    help="combine the problems of these result files into one (to --out) and summarize")
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    only = None
    if args.selections:
        asked = {"baseline", "lcs", "lcs+verified", *args.selections.split(",")}
        unknown = asked - set(SELECTIONS)
        if unknown:
            ap.error(f"--selections: unknown {', '.join(sorted(unknown))}")
        only = sorted(asked, key=list(SELECTIONS).index)
    root = args.out / "rankings-runs"
    previous = json.loads(args.reuse.read_text()) if args.reuse else None
    b_all = previous["budgets"] if previous else budgets(args.quick)
    results: dict = {"budgets": b_all, "seeds": previous["seeds"] if previous else args.seeds, "learns": LEARNS,
                     "problems": {}}
    path = args.reuse or args.out / f"rankings-{time.strftime('%Y-%m-%d')}{'-quick' if args.quick else ''}.json"
    t0 = time.time()
    names = list(previous["problems"]) if previous else args.problems.split(",")
    for name in names:
        if previous and name not in args.problems.split(","):   # --reuse on some problems: the rest as they were
            results["problems"][name] = previous["problems"][name]
            continue
        if previous:
            entry = previous["problems"][name]
            floor, learns_at, seeds = entry["chance"], entry["learns_at"], entry["seeds"]
            if args.retrain_warm:   # selections added now train under the start reference directly
                b_all[name]["stop_reference"] = "start"
            for seed in seeds:
                _legacy_names(seed)
                run_searches(root / name, seed, problem_options(name, root / "data"), b_all[name], only,
                             args.keep_searches)
                run_selections(root / name, seed, b_all[name], learns_at, only)
                if args.retrain_warm:
                    retrain_warm(root / name, seed, b_all[name], learns_at)
                print(f"[{time.time() - t0:5.0f} s] {name} seed {seed['seed']}: selections added", flush=True)
            refresh_costs(root / name, seeds)
        else:
            options = problem_options(name, root / "data")
            floor = chance(options)
            learns_at = floor + LEARNS * (1 - floor)
            seeds = []
            n_seeds = args.mnist_seeds if name == "mnist5k" and args.mnist_seeds else args.seeds
            for seed in range(1, n_seeds + 1):
                seeds.append(one_seed(root / name, options, seed, b_all[name], learns_at, only, args.keep_searches))
                print(f"[{time.time() - t0:5.0f} s] {name} seed {seed} done", flush=True)
                # the seeds done so far, raw: a run stopped for time keeps them (`--reuse FILE` aggregates them)
                results["problems"][name] = {"chance": floor, "learns_at": learns_at, "seeds": seeds, "partial": True}
                results["wall_s"] = time.time() - t0
                save(path, results)
        agg = aggregate(seeds, TopKConfig().patience)
        results["problems"][name] = {"chance": floor, "learns_at": learns_at, "seeds": seeds, "per_selection": agg}
        print_problem(name, agg)
        results["wall_s"] = time.time() - t0
        save(path, results)   # keep what is done if a later part fails
    summarize(results)
    results["wall_s"] = time.time() - t0 + (previous or {}).get("wall_s", 0.0)
    save(path, results)
    print(f"saved {path} ({results['wall_s']:.0f} s)")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
