"""Figures for docs/benchmarks.md, drawn from run_all.py's JSON alone (so anyone can redraw them).

    python benchmarks/figures.py benchmarks/results/<date>-<machine>.json [OUT_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from schemes import LABEL, SCHEMES

COLOR = {"none": "tab:gray", "lp": "tab:blue", "lcs": "tab:orange"}


def make_all(results: dict, out_dir: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("figures need matplotlib: pip install 'wtnas[report]'")
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        made.append(out_dir / name)

    all_problems = (results.get("suite") or {}).get("problems", {})
    problems = {name: e for name, e in all_problems.items() if e.get("per_scheme")}   # searched, not only pairs
    for name, entry in problems.items():
        conv = entry["convergence"]
        seeds = entry["per_scheme"]["none"]["seeds"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
        for ax, axis, xlabel in ((axes[0], "time", "time since search start (s)"),
                                 (axes[1], "budget", "candidates evaluated")):
            for s in SCHEMES:
                pts = conv[axis][s]
                t, m, ci = [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]
                ax.plot(t, m, marker="o", ms=3, color=COLOR[s], label=LABEL[s])
                ax.fill_between(t, [a - b for a, b in zip(m, ci)], [a + b for a, b in zip(m, ci)], color=COLOR[s],
                                alpha=0.18)
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
        axes[0].set_title(f"{name}: mean candidate score per time slot", fontsize=10)
        axes[1].set_title(f"{name}: mean score per tenth of the budget", fontsize=10)
        axes[0].set_ylabel("score after 1 epoch")
        axes[1].legend()
        fig.suptitle(f"mean over {seeds} seeds, 95% t-band over seeds", fontsize=9)
        save(fig, f"convergence-{name}.png")

    if problems:
        fig, axes = plt.subplots(1, len(problems), figsize=(4.2 * len(problems), 3.6), squeeze=False)
        for ax, (name, entry) in zip(axes[0], problems.items()):
            agg = entry["per_scheme"]
            data = [agg[s]["epochs"] for s in SCHEMES]
            ax.boxplot(data, showmeans=True)
            ax.set_xticks(range(1, len(SCHEMES) + 1), [LABEL[s] for s in SCHEMES])
            ax.set_title(f"{name}: top-K epochs to converge")
            ax.set_ylabel("epochs (early stopping)")
            ax.grid(alpha=0.3, axis="y")
        save(fig, "topk-epochs.png")

        fig, axes = plt.subplots(1, len(problems), figsize=(4.2 * len(problems), 3.6), squeeze=False)
        for ax, (name, entry) in zip(axes[0], problems.items()):
            agg = entry["per_scheme"]
            for offset, key, label in ((-0.15, "tau_warm", "vs warm-trained"), (0.15, "tau_scratch", "vs from scratch")):
                ax.errorbar([i + offset for i in range(len(SCHEMES))], [agg[s][key][0] for s in SCHEMES],
                            yerr=[agg[s][key][1] for s in SCHEMES], fmt="o", capsize=4, label=label)
            ax.set_xticks(range(len(SCHEMES)), [LABEL[s] for s in SCHEMES])
            ax.set_title(f"{name}: Kendall tau (mean ± std over seeds)")
            ax.axhline(0, color="black", lw=0.5)
            ax.grid(alpha=0.3, axis="y")
            ax.legend(fontsize=8)
        save(fig, "tau.png")

    for name, entry in all_problems.items():
        pairs = entry.get("pairs")
        if not pairs:
            continue
        groups = [("random", pairs["random"])] + [(f"d={d}", s) for d, s in pairs["by_distance"].items()]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
        for ax, m in zip(axes, ("lp", "lcs")):
            x = range(len(groups))
            shares = {k: [g[m][k] * g[m]["transferable"] if g[m]["transferable"] else 0.0 for _, g in groups]
                      for k in ("positive", "tie", "negative")}
            bottom = [0.0] * len(groups)
            for k, color in (("positive", "tab:green"), ("tie", "tab:olive"), ("negative", "tab:red")):
                ax.bar(x, shares[k], bottom=bottom, color=color, label=k)
                bottom = [b + v for b, v in zip(bottom, shares[k])]
            ax.bar(x, [1 - b for b in bottom], bottom=bottom, color="lightgray", label="not transferable")
            ax.set_xticks(list(x), [g for g, _ in groups])
            ax.set_title(f"{name}, {m.upper()}: receiver after 1 epoch vs from scratch")
            ax.set_ylabel("share of pairs")
        axes[1].legend(fontsize=8, loc="lower right")
        save(fig, f"pairs-{name}.png")

    overhead = results.get("overhead") or {}
    if overhead:
        parts = ("build_s", "ckpt_read_s", "match_s", "copy_s", "eval_s", "ckpt_write_s")
        fig, axes = plt.subplots(1, len(overhead), figsize=(4.6 * len(overhead), 3.6), squeeze=False)
        for ax, (name, o) in zip(axes[0], overhead.items()):
            schemes = [s for s in SCHEMES if s in o]
            bottom = [0.0] * len(schemes)
            for k in parts:
                vals = [o[s][k] * 1000 for s in schemes]
                ax.bar([LABEL[s] for s in schemes], vals, bottom=bottom, label=k[:-2])
                bottom = [b + v for b, v in zip(bottom, vals)]
            train = ", ".join(f"{LABEL[s]} {o[s]['train_s']:.2f} s" for s in schemes)
            ax.set_title(f"{name}: per candidate besides training\n(train: {train})", fontsize=9)
            ax.set_ylabel("median ms")
            ax.legend(fontsize=7)
        save(fig, "overhead.png")

    matching = results.get("matching") or {}
    if matching.get("lcs_scaling_ms"):
        pts = sorted((int(n), ms) for n, ms in matching["lcs_scaling_ms"].items())
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.loglog([p[0] for p in pts], [p[1] for p in pts], marker="o")
        ax.set_xlabel("tensors per shape sequence")
        ax.set_ylabel("LCS time (ms, median)")
        ax.set_title("LCS matching time vs sequence length")
        ax.grid(alpha=0.3, which="both")
        save(fig, "lcs-time.png")
    return made


if __name__ == "__main__":
    src = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else src.parent / src.stem
    for p in make_all(json.loads(src.read_text()), out):
        print(p)
