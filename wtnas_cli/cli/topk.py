"""`wtnas topk`: fully train the K best candidates of a run with early stopping."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from .common import console, err_console, fmt_int, fmt_score


class TopKObserver:
    def __init__(self) -> None:
        self.progress = Progress(SpinnerColumn(), TextColumn("[bold]top-K training"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("last: {task.fields[last]}"),
                                 TimeElapsedColumn(), console=err_console)
        self.task: TaskID | None = None

    def started(self, total: int, reused: int, workers: int) -> None:
        if reused:
            err_console.print(f"{reused} of {total} models already trained with these settings: not trained again")
        self.progress.start()
        self.task = self.progress.add_task("topk", total=total, completed=reused, last="-")

    def model_done(self, row: dict) -> None:
        last = (f"#{row['candidate_id']} {row['epochs_trained']} epochs → {fmt_score(row['objective_final'])}"
                if row["status"] == "ok" else f"#{row['candidate_id']} failed")
        assert self.task is not None   # started() came first
        self.progress.update(self.task, advance=1, last=last)

    def note(self, message: str) -> None:
        err_console.print(f"[yellow]{escape(message)}[/]")

    def close(self) -> None:
        if self.task is not None:   # started (a run refused before it began printed no progress)
            self.progress.stop()


def topk_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run directory written by `wtnas run`."),
    k: int = typer.Option(10, "--k", help="How many of the best candidates to train.", rich_help_panel="Which candidates"),
    before: Optional[float] = typer.Option(None, "--before", help="Only candidates finished within this many "
                                                                   "seconds of the search's start.",
                                                                   rich_help_panel="Which candidates"),
    from_scratch: bool = typer.Option(False, "--from-scratch", help="Retrain from random weights instead of "
                                                                    "warm-starting from the candidate's checkpoint.",
                                                                    rich_help_panel="Training and early stopping"),
    early_stop: bool = typer.Option(True, "--early-stop/--no-early-stop",
                                    help="Stop at convergence, or train exactly --max-epochs (the paper's fully "
                                         "trained reference; the early-stop point is still recorded).",
                                         rich_help_panel="Training and early stopping"),
    patience: int = typer.Option(2, help="Epochs without improvement before stopping (paper: 2).",
                                 rich_help_panel="Training and early stopping"),
    stop_reference: str = typer.Option("first-epoch", "--stop-reference", help="What an epoch must improve on: "
                                       "first-epoch = Keras' default, the paper's (every model trains at least "
                                       "--patience + 1 epochs and hands back its best epoch; always with "
                                       "--from-scratch); start = the model's score before top-K training (a warm "
                                       "start that never beats its checkpoint keeps it after --patience epochs).",
                                       rich_help_panel="Training and early stopping"),
    min_delta: Optional[float] = typer.Option(None, "--min-delta", help="Smallest improvement that counts "
                                                                        "\\[default: the problem's, digits 0.001].",
                                                                        rich_help_panel="Training and early stopping"),
    max_epochs: int = typer.Option(20, "--max-epochs", help="Cap on epochs (paper: 20).",
                                   rich_help_panel="Training and early stopping"),
    tau_sample: int = typer.Option(0, "--tau-sample", help="Also train N randomly sampled candidates for "
                                                           "Kendall's tau in `wtnas report`.",
                                                           rich_help_panel="Which candidates"),
    verify: str = typer.Option("known", "--verify", help="From-scratch checks against the run's threshold: "
                               "known = only the checks the run already has (controls; free), all = check every "
                               "top-K candidate (costs ~20-60% of top-K time), off.", rich_help_panel="Verification"),
    no_verify: bool = typer.Option(False, "--no-verify", help="Same as --verify off.", rich_help_panel="Verification"),
    check_epochs: Optional[int] = typer.Option(None, "--check-epochs", help="Epochs of each from-scratch check "
                                               "(with --verify all or --rank check) \\[default: the search's, so "
                                               "controls count]. The search's epochs + --patience also catches "
                                               "models that collapse after their first epoch.", rich_help_panel="Verification"),
    min_distance: int = typer.Option(2, "--min-distance", help="No two top-K architectures closer than this many "
                                     "changed nodes (1: allow near-copies).", rich_help_panel="Which candidates"),
    max_per_lineage: int = typer.Option(0, "--max-per-lineage", help="At most this many top-K models whose "
                                        "inherited weights go back to one random initialization (0: no cap; "
                                        "measured harmful under evolution, docs/benchmarks.md).",
                                        rich_help_panel="Which candidates"),
    min_lineages: int = typer.Option(0, "--min-lineages", help="At least this many weight lineages in the top-K "
                                     "while the run has them; the best lineage keeps the other places (0: no rule; "
                                     "for searches with -o evolution.islands).", rich_help_panel="Which candidates"),
    rank: str = typer.Option("score", "--rank", help="score: by search score; check: the best from-scratch checks "
                             "among 2K candidates (transfer-aware, opt-in; see docs/benchmarks.md).",
                             rich_help_panel="Which candidates"),
    workers: Optional[int] = typer.Option(None, help="Worker processes \\[default: CPU count, at most 8].",
                                          rich_help_panel="Execution"),
    seed: int = typer.Option(0, help="Seed for the tau sample and training.", rich_help_panel="Execution"),
) -> None:
    """Train the top-K candidates to convergence (Keras EarlyStopping semantics) and record
    epochs to converge, objective at early stop and after full training."""
    from ..results.topk import TopKConfig, run_topk

    cfg = TopKConfig(k=k, before=before, from_scratch=from_scratch, early_stop=early_stop, patience=patience,
                     min_delta=min_delta, max_epochs=max_epochs, tau_sample=tau_sample, workers=workers, seed=seed,
                     verify="off" if no_verify else verify, min_distance=min_distance,
                     max_per_lineage=max_per_lineage, min_lineages=min_lineages, rank=rank,
                     check_epochs=check_epochs,
                     stop_reference=stop_reference)
    observer = TopKObserver()
    try:
        summary = run_topk(run_dir, cfg, observer=observer)
    finally:
        observer.close()
    if summary is None:  # this process served as a worker (an MPI rank > 0)
        return
    print_topk(summary)
    if summary.interrupted:
        console.print("Interrupted: run the same command again to train the rest.")
        raise typer.Exit(130)


def print_topk(summary) -> None:
    from ..results.selection import flag_reason, lineage_rule_words, threshold_words
    from ..results.formatting import top_rung

    table = Table(title=f"top-K of {summary.run_dir} ({summary.mode} start; {summary.settings})")
    tested = any(r.get("objective_test") is not None for r in summary.rows)
    # early stopping hands back its best epoch: then at-stop and final are one number
    same = all(r["objective_at_stop"] == r["objective_final"] for r in summary.rows if r["status"] == "ok")

    def start(r: dict) -> str:
        return "warm" if r["warm_started"] else ("scratch" if summary.mode == "scratch"
                                                 else "[yellow]scratch (checkpoint unusable)[/]")

    def kind(r: dict) -> str:
        return "+".join(k for k, flag in (("top-K", r["in_topk"]), ("tau", r["in_tau_sample"])) if flag)

    ok = [r for r in summary.rows if r["status"] == "ok"]
    # numbers never wrap or get cut; the start and set columns only when they tell models apart (the
    # title says the mode), so the table fits 80 columns; a failed model's error follows the table
    words = [(name, f) for name, f in (("start", start), ("set", kind)) if len({f(r) for r in ok}) > 1]
    numbers = ("id", "est. score", "epochs", "converged", *(("objective",) if same else ("obj. at stop", "obj. final")),
               *(("test",) if tested else ()), "params")
    for col in numbers:
        table.add_column(col, no_wrap=True)
    for col, _ in words:
        table.add_column(col, overflow="fold")
    for r in sorted(summary.rows, key=lambda r: (-(r["estimated_score"] or 0), r["candidate_id"])):
        if r["status"] != "ok":
            table.add_row(str(r["candidate_id"]), fmt_score(r["estimated_score"]), "-", "[red]failed[/]",
                          *["-"] * (len(numbers) - 4 + len(words)))
            continue
        table.add_row(str(r["candidate_id"]), fmt_score(r["estimated_score"]), str(r["epochs_to_converge"]),
                      "top rung" if top_rung(r) else "yes" if r["converged"] else "no (cap)",
                      *((fmt_score(r["objective_final"]),) if same else (fmt_score(r["objective_at_stop"]),
                                                                         fmt_score(r["objective_final"]))),
                      *((fmt_score(r["objective_test"]),) if tested else ()),
                      fmt_int(r["num_params"]), *(f(r) for _, f in words))
    console.print(table)
    for r in summary.rows:
        if r["status"] != "ok":
            console.print(f"[red]#{r['candidate_id']} failed:[/] {escape(r['error'] or '')}", soft_wrap=True)
    for note in summary.notes:
        console.print(f"[yellow]Note:[/] {escape(note)}")
    choice = summary.choice
    if choice.get("verified"):
        console.print(f"Verified top-K: from-scratch checks > {threshold_words(choice)}; "
                      f"{choice['checked_now']} checked now")
    elif choice.get("verify") == "known":
        console.print(f"{choice['checked']} of the top-K checked with the run's own from-scratch scores (threshold "
                      f"{threshold_words(choice)}); --verify all checks every model")
    for f in choice.get("flagged", []):
        console.print(f"[yellow]Flagged inherited-only:[/] candidate {f['id']} (search score {f['score']:.4f}, "
                      f"{flag_reason(f, choice)}) was replaced by the next candidate")
    if choice:
        console.print(f"{choice['distinct_architectures']} distinct architectures in {choice['families']} families "
                      f"and {choice['lineages']} weight lineages; {len(choice['similar'])} near-copies skipped "
                      f"(--min-distance {choice['min_distance']}); {lineage_rule_words(choice)}"
                      + ("; ranked by from-scratch check" if choice["rank"] == "check" else ""))
    console.print(f"{summary.trained_now} trained now, {summary.reused} reused, {summary.failed} failed. "
                  f"Next: [bold]wtnas report {summary.run_dir}[/]")


def register(app: typer.Typer) -> None:
    app.command("topk")(topk_command)
