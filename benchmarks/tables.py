"""Markdown tables for docs/benchmarks.md, from the benchmarks' JSON (no hand-copied numbers).

    python benchmarks/tables.py benchmarks/results/<date>-<machine>.json > /tmp/tables.md
    python benchmarks/tables.py benchmarks/results/safe-transfer-<date>.json   # bench_safe_transfer.py
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from schemes import LABEL, SCHEMES


def ms(pair, digits: int = 3) -> str:
    m, s = pair
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return "—"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def p(value) -> str:
    return "—" if value is None or math.isnan(value) else (f"{value:.3f}" if value >= 0.001 else "< 0.001")


def ratio(a: dict, key: str, bold: bool = False) -> str:
    """A ratio against the baseline with its 95% interval; the baseline itself is 1.00x."""
    r = a.get(key)
    if not r:
        return "1.00x"
    mark = "**" if bold else ""
    return f"{mark}{r[0]:.2f}x{mark} [{r[1]:.2f}, {r[2]:.2f}]"


def suite_tables(problem: str, entry: dict) -> str:
    agg = entry["per_scheme"]
    n = agg["none"]["seeds"]
    k = len(entry["runs"][0]["warm"]["topk"])
    lines = [f"**{problem}** — mean ± std over {n} seeds; top-{k} epochs pooled over seeds ({n * k} models per scheme)",
             "",
             "| scheme | candidate score, 2nd half | p | with transfer | top-K epochs (geo. mean) | "
             "baseline / scheme [95% CI] | p | "
             "top-K objective (early stopping) | p | tau vs warm-trained |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in SCHEMES:
        a = agg[s]
        rtxt = ratio(a, "epoch_ratio_vs_baseline", bold=True)
        lines.append(f"| {LABEL[s]} | {ms(a['mean_score_2nd_half'])} | {p(a.get('p_mean_score', float('nan')))} | "
                     f"{a['transfer_share'][0]:.0%} | {a['epochs_gmean']:.2f} | {rtxt} | {p(a.get('p_epochs', float('nan')))} | "
                     f"{ms(a['objective_final'])} | "
                     f"{p(a.get('p_objective_final', float('nan')))} | {ms(a['tau_warm'])} |")
    lines += ["", "Beyond the paper — the same top-K (and tau sample) retrained from random weights:", "",
              "| scheme | objective from scratch | p | tau vs from-scratch | top-K params (mean over seeds) | "
              "ancestors carried, top-K | tau(ancestors, score) |",
              "|---|---|---|---|---|---|---|"]
    for s in SCHEMES:
        a = agg[s]
        lines.append(f"| {LABEL[s]} | {ms(a['objective_scratch'])} | {p(a.get('p_objective_scratch', float('nan')))} | "
                     f"{ms(a['tau_scratch'])} | {a['params'][0]:,.0f} ± {a['params'][1]:,.0f} | "
                     f"{ms(a['lineage_topk'], 1)} | {ms(a['tau_lineage_score'], 2) if s != 'none' else '—'} |")
    lines += ["", "Early stopping cannot stop before patience + 1 epochs; without that floor (epochs up to the "
              "epoch whose objective is kept):", "",
              "| scheme | top-K at the floor | epochs to the kept epoch (geo. mean) | baseline / scheme [95% CI] | "
              "tau(ancestors, top-K epochs) |", "|---|---|---|---|---|"]
    for s in SCHEMES:
        a = agg[s]
        rtxt = ratio(a, "best_epoch_ratio_vs_baseline")
        tl = a.get("tau_lineage_epochs", float("nan"))
        lines.append(f"| {LABEL[s]} | {a['at_floor']:.0%} | {a['epochs_to_best_gmean']:.2f} | {rtxt} | "
                     f"{'—' if s == 'none' or math.isnan(tl) else f'{tl:.2f}'} |")
    variants = entry.get("topk_variants") or {}
    if variants:
        lines += ["", "The same warm top-K re-trained (in copies of the runs) under other settings — `full`: the same "
                  "criterion, trained on to the epoch cap (Table III); `strict`: patience 5, min-delta 0:", "",
                  "| settings | scheme | epochs (geo. mean) | baseline / scheme [95% CI] | p | objective at early stop | "
                  "objective after full training | p |", "|---|---|---|---|---|---|---|---|"]
        for name, per in variants.items():
            st = per["settings"]
            label = f"{name} ({', '.join(f'{k}={v}' for k, v in st.items())})"
            for s in SCHEMES:
                a = per[s]
                rtxt = ratio(a, "epoch_ratio_vs_baseline")
                lines.append(f"| {label} | {LABEL[s]} | {a['epochs_gmean']:.2f} | {rtxt} | "
                             f"{p(a.get('p_epochs', float('nan')))} | {ms(a['objective_at_stop'])} | "
                             f"{ms(a['objective_final']) if name == 'full' else '—'} | "
                             f"{p(a.get('p_objective_final', float('nan'))) if name == 'full' else '—'} |")
    pairs = entry.get("pairs")
    if pairs:
        lines += ["", f"Transferable pairs ({pairs['random']['pairs']} random pairs, then pairs at distance d; "
                      "+ / − / = among transferable pairs: transfer better / worse / equal after one epoch):", "",
                  "| pairs | n | LP transferable | LP + / − / = | LP mean gain | "
                  "LCS transferable | LCS + / − / = | LCS mean gain |",
                  "|---|---|---|---|---|---|---|---|"]
        groups = [("random", pairs["random"])] + [(f"d = {d}", g) for d, g in pairs["by_distance"].items()]
        for name, g in groups:
            cells = []
            for m in ("lp", "lcs"):
                x = g[m]
                cells += [f"{x['transferable']:.0%} ({x['tensor_share']:.0%} of tensors)",
                          f"{x['positive']:.0%} / {x['negative']:.0%} / {x['tie']:.0%}" if x["transferable"] else "—",
                          f"{x['mean_gain']:+.3f}" if x["transferable"] else "—"]
            lines.append(f"| {name} | {g['pairs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def overhead_table(overhead: dict) -> str:
    keys = ("build_s", "ckpt_read_s", "match_s", "copy_s", "train_s", "eval_s", "ckpt_write_s")
    lines = ["| problem | scheme | " + " | ".join(k[:-2] for k in keys)
             + " | transfer share | checkpoint | run time vs baseline |",
             "|---|---|" + "---|" * (len(keys) + 3)]
    for problem, o in overhead.items():
        for s in SCHEMES:
            if s not in o:
                continue
            r = o[s]
            lines.append(f"| {problem} | {LABEL[s]} | " + " | ".join(f"{r[k] * 1000:.1f}" for k in keys)
                         + f" | {r['transfer_share']:.2%} | {r['checkpoint_mb']:.1f} MB | "
                         f"{r['wall_s'] / o['none']['wall_s']:.2f} |")
    return "\n".join(lines)


def scaling_table(scaling: dict) -> str:
    lines = ["| executor | scheme | 1 worker (cand./min) | 2 workers (cand./min) | speed-up | dispatch (ms, 2 workers) |",
             "|---|---|---|---|---|---|"]
    executors = sorted({k.split("/")[0] for k in scaling}, key=["local", "ray", "mpi"].index)
    for e in executors:
        for m in ("none", "lcs"):
            one, two = scaling[f"{e}/1/{m}"], scaling[f"{e}/2/{m}"]
            lines.append(f"| {e} | {LABEL[m]} | {one['per_min']:.1f} | {two['per_min']:.1f} | "
                         f"{two['per_min'] / one['per_min']:.2f}x | {two['dispatch_ms']:.1f} |")
    return "\n".join(lines)


def safe_transfer_tables(r: dict) -> str:
    """bench_safe_transfer.py: pairs per matcher and distance, then the random + nearest searches."""
    b = r["budget"]
    parts = [f"{r['date']}; {b['pairs']} random pairs and {b['per_distance']} pairs per distance d = 1..6 per "
             f"problem; searches: random strategy + nearest selector, {b['seeds']} seeds x "
             + ", ".join(f"{n} candidates on {k}" for k, n in b["evals"].items()) + "."]
    for problem, entry in (r.get("pairs") or {}).items():
        matchers = entry["matchers"]
        lines = [f"**{problem}** pairs (+ / − / = among transferable pairs; − includes receivers that failed; "
                 f"params = mean share of the receiver's parameters moved; crossings = tensors seeded from "
                 f"another role, total):", "",
                 "| pairs | n | " + " | ".join(f"{m}: params, + / − / =, gain, crossings" for m in matchers) + " |",
                 "|---|---|" + "---|" * len(matchers)]
        groups = [("random", entry["random"])] + [(f"d = {d}", g) for d, g in entry["by_distance"].items()]
        for name, g in groups:
            cells = [f"{g[m]['param_share']:.0%}, {g[m]['positive']:.0%} / {g[m]['negative']:.0%} / {g[m]['tie']:.0%}, "
                     f"{g[m]['mean_gain']:+.3f}, {g[m]['role_crossings']}"
                     + (f" ({g[m]['failed']:.0%} failed)" if g[m].get("failed") else "") for m in matchers]
            lines.append(f"| {name} | {g['pairs']} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    for problem, entry in (r.get("search") or {}).items():
        lines = [f"**{problem}** searches (random + nearest, {entry['seeds']} seeds x {entry['evals']} candidates; "
                 f"p: permutation test against lcs-shape over seeds):", "",
                 "| matcher | mean score, 2nd half | p vs lcs-shape | failed (non-finite) | children | children with a "
                 "role-crossing copy | partial copies | params transferred |", "|---|---|---|---|---|---|---|---|"]
        for m, a in entry["summary"].items():
            lines.append(f"| {m} | {a['mean_score_2nd_half']:.3f} ± {a['std']:.3f} | "
                         f"{p(a['p_vs_lcs_shape']) if a['p_vs_lcs_shape'] is not None else '—'} | "
                         f"{a['failed']} ({a['failed_non_finite']}) of {a['candidates']} | {a['children']} | "
                         f"{a['children_with_role_crossing']} | {a['partial_tensors']} | {a['param_share']:.0%} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def main(path: Path) -> str:
    r = json.loads(path.read_text())
    if "pairs" in r and "budget" in r:
        return safe_transfer_tables(r)
    parts = [f"Machine: {r.get('machine', '?')}; {r.get('date', '?')}."]
    for problem, entry in (r.get("suite") or {}).get("problems", {}).items():
        parts.append(suite_tables(problem, entry))
    suite = r.get("suite") or {}
    if suite:
        parts.append(f"Baseline/LP epochs ratio, geometric mean over problems: {suite['lp_epoch_ratio_gmean']:.2f}x; "
                     f"baseline/LCS: {suite['lcs_epoch_ratio_gmean']:.2f}x.")
    if r.get("overhead"):
        parts.append(overhead_table(r["overhead"]))
    if r.get("scaling"):
        parts.append(scaling_table(r["scaling"]))
    return "\n\n".join(parts)


if __name__ == "__main__":
    print(main(Path(sys.argv[1])))
