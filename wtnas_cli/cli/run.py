"""`wtnas run`: a search with live progress and a closing table of the best candidates."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .common import console, err_console, fmt_int, fmt_score


# what the progress line shows, most important first, with the columns each field takes at most:
# a narrow terminal (or a log, which rich takes for 80 columns) drops the last ones, never a number
# that says how far the run is
_FIELDS = [("failed", 10), ("transfer", 14), ("lift", 34)]


def progress_columns(width: int) -> list:
    """The progress line's columns for a console `width` wide: spinner, "search", done/total, best,
    elapsed and ETA always (~60 columns); failed, transfer share and the controls' lift while they
    fit; a bar in what is left (none below 10 columns)."""
    room = width - 54   # spinner, "search", done/total up to 100000/100000, best; elapsed, "ETA", remaining
    optional = {"failed": TextColumn("failed {task.fields[failed]}"),
                "transfer": TextColumn("transfer {task.fields[transfer]}"),
                "lift": TextColumn("lift {task.fields[lift]}")}
    shown = []
    for name, need in _FIELDS:
        if room >= need:
            shown.append(optional[name])
            room -= need
    bar = [BarColumn(bar_width=min(40, room))] if room >= 10 else []
    return [SpinnerColumn(), TextColumn("[bold]{task.description}"), *bar, MofNCompleteColumn(),
            TextColumn("best [cyan]{task.fields[best]}[/]"), *shown, TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn()]


class RichObserver:
    """Live progress: candidates done/total, best score so far, transfer rate, ETA."""

    def __init__(self) -> None:
        self.progress = Progress(
            *progress_columns(err_console.width), console=err_console, transient=False,
            # a log file (a batch job) gets the final line only; a terminal a redraw 4 times a second
            auto_refresh=err_console.is_terminal, refresh_per_second=4)
        self.task: TaskID | None = None
        self._latest = None
        self._updated = 0.0

    def started(self, cfg, run_dir, total, done, workers) -> None:
        problem = cfg.problem
        if cfg.space:   # a space file: its own name, not the `file` problem that reads it
            from ..model.spacefile import parse_space

            problem = f"{parse_space(Path(cfg.space))[0].name} (--space {Path(cfg.space).name})"
        err_console.print(f"[bold]wtnas run[/] problem={escape(problem)} backend={cfg.backend} "
                          f"strategy={cfg.strategy} matcher={cfg.matcher} executor={cfg.executor} workers={workers} "
                          f"max_evals={total} → {run_dir}")
        if done:
            err_console.print(f"resumed: {done} of {total} candidates were done; continuing from there")
        self.progress.start()
        self.task = self.progress.add_task("search", total=total, completed=done, best="-", transfer="-",
                                           failed=0, lift="-")

    # Updating the line after every candidate costs more than a redraw shows: it takes the newest
    # state at most this often (the progress line was a fifth of the scheduler's CPU at scale).
    UPDATE_S = 0.1

    def candidate_done(self, record, summary) -> None:
        self._due(summary)

    def control_done(self, summary) -> None:
        self._due(summary)

    def promotion_done(self, record, summary) -> None:
        self._due(summary)

    def _due(self, summary) -> None:
        self._latest = summary
        now = time.monotonic()
        if now - self._updated >= self.UPDATE_S:
            self._updated = now
            self._show(summary)

    def _show(self, summary) -> None:
        assert self.task is not None   # started() came first
        self.progress.update(self.task, completed=summary.done,
                             best=fmt_score(summary.best["score"] if summary.best else None),
                             transfer=f"{summary.transfer_rate:.0%}", failed=summary.failed,
                             lift=summary.controls.line())

    def stopping(self, reason: str) -> None:
        self.progress.console.print(f"[yellow]{escape(reason)}[/]")

    def warning(self, message: str) -> None:
        err_console.print(f"[yellow]Warning:[/] {escape(message)}", soft_wrap=True)

    def close(self) -> None:
        if self._latest is not None:    # the last state, whenever it came
            self._show(self._latest)
        if self.task is not None:   # started (a run refused before it began printed no progress)
            self.progress.stop()


def run_command(
    problem: Optional[str] = typer.Option(None, help="Problem plugin: digits, mnist, cifar10, nt3, uno, ... "
                                                     "\\[default: digits].", rich_help_panel="Problem and data"),
    space: Optional[Path] = typer.Option(None, "--space", help="Your own search space (.toml or .yaml); "
                                                               "see docs/search-spaces.md.", rich_help_panel="Problem and data"),
    data: Optional[Path] = typer.Option(None, "--data", help="Data for --space: .npz, .h5 or .csv.",
                                        rich_help_panel="Problem and data"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Directory with the problem's standard "
                                                                     "dataset files (nothing is downloaded).",
                                                                     rich_help_panel="Problem and data"),
    synthetic: Optional[bool] = typer.Option(None, "--synthetic", help="Learnable synthetic data of the "
                                             "problem's shape (offline runs, tests); = -o PROBLEM.synthetic=true.",
                                             rich_help_panel="Problem and data"),
    samples: Optional[int] = typer.Option(None, "--samples", help="Synthetic data: number of samples; "
                                                                  "= -o PROBLEM.samples=N.", rich_help_panel="Problem and data"),
    features: Optional[int] = typer.Option(None, "--features", help="nt3: feature count (synthetic, or a check "
                                           "on the files); = -o nt3.features=N \\[default: 60483].",
                                           rich_help_panel="Problem and data"),
    strategy: Optional[str] = typer.Option(None, help="Search strategy: evolution, random \\[default: evolution].",
                                           rich_help_panel="Search"),
    selector: Optional[str] = typer.Option(None, help="Provider selector: parent, nearest, none, auto "
                                                      "\\[default: auto = the strategy's choice].", rich_help_panel="Transfer"),
    matcher: Optional[str] = typer.Option(None, help="Tensor matcher: lcs, lp (role-aware), lcs-slice (+ partial "
                                                    "copies), lcs-shape, lp-shape (the paper's shape-only rule), none "
                                                    "(baseline) \\[default: lcs].", rich_help_panel="Transfer"),
    max_evals: Optional[int] = typer.Option(None, "--max-evals", help="Candidates to evaluate \\[default: 200].",
                                            rich_help_panel="Search"),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Stop submitting after this many seconds.",
                                                rich_help_panel="Search"),
    epochs: Optional[int] = typer.Option(None, help="Training epochs per candidate \\[default: 1].", rich_help_panel="Search"),
    controls: Optional[float] = typer.Option(None, "--controls", help="Share of the candidates with inherited "
                                             "weights that also train from scratch, to measure the inheritance "
                                             "lift and ranking (0 = none) \\[default: 0.1].", rich_help_panel="Transfer"),
    keep: Optional[str] = typer.Option(None, "--keep", help="Checkpoints: 'needed' deletes those no strategy, "
                                       "selector, job, top-K or tau sample can need; 'all' keeps every one "
                                       "\\[default: needed].", rich_help_panel="Checkpoints and retention"),
    keep_top: Optional[int] = typer.Option(None, "--keep-top", help="--keep needed: checkpoints of the best M "
                                           "candidates stay for `wtnas topk` \\[default: 50].",
                                           rich_help_panel="Checkpoints and retention"),
    tau_reserve: Optional[int] = typer.Option(None, "--tau-reserve", help="--keep needed: a uniform random "
                                              "sample this large stays for `wtnas topk --tau-sample` \\[default: 30].",
                                              rich_help_panel="Checkpoints and retention"),
    max_checkpoints: Optional[int] = typer.Option(None, "--max-checkpoints", help="--keep needed with a selector "
                                                  "that may pick any checkpoint (nearest): keep at most N, deleting "
                                                  "the lowest-scoring first \\[default: no cap: keep all].",
                                                  rich_help_panel="Checkpoints and retention"),
    population: Optional[int] = typer.Option(None, help="Evolution population size N; = -o evolution.population=N "
                                                        "\\[default: 20].", rich_help_panel="Search"),
    sample: Optional[int] = typer.Option(None, help="Evolution sample size S; = -o evolution.sample=S \\[default: 10].",
                                         rich_help_panel="Search"),
    backend: Optional[str] = typer.Option(None, help="Backend plugin \\[default: torch].", rich_help_panel="Execution"),
    executor: Optional[str] = typer.Option(None, help="Executor plugin \\[default: local].", rich_help_panel="Execution"),
    workers: Optional[int] = typer.Option(None, help="Workers \\[default: local: CPU count (at most 8) or one per "
                                                     "GPU; ray: cluster CPUs; mpi: ranks - 1].", rich_help_panel="Execution"),
    threads_per_worker: Optional[int] = typer.Option(None, "--threads-per-worker",
                                                     help="CPU threads per worker \\[default: cores / workers].",
                                                     rich_help_panel="Execution"),
    devices: Optional[str] = typer.Option(None, help="Local executor: GPU ids to give one per worker (0,1), "
                                                     "'auto' (every visible GPU) or 'cpu'.", rich_help_panel="Execution"),
    gpus_per_worker: Optional[float] = typer.Option(None, "--gpus-per-worker",
                                                    help="Ray executor: GPUs per candidate task; = -o "
                                                         "ray.gpus_per_worker=G \\[default: 0].", rich_help_panel="Execution"),
    max_jobs_per_worker: Optional[int] = typer.Option(None, "--max-jobs-per-worker",
                                                      help="Start a fresh worker process after N candidates "
                                                           "\\[default: the backend's hint; keras-tensorflow 50, "
                                                           "torch and keras never].", rich_help_panel="Execution"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray executor: address of an existing "
                                              "cluster; = -o ray.address=HOST:PORT \\[default: start a local one].",
                                              rich_help_panel="Execution"),
    option: Optional[list[str]] = typer.Option(None, "--option", "-o", metavar="NAME.OPTION=VALUE",
                                               help="A component's own option, COMPONENT.OPTION=VALUE (e.g. -o "
                                               "ray.address=head:6379; KIND.NAME.OPTION where two kinds share a name); "
                                               "repeatable. `wtnas plugins --options` "
                                               "lists them.", rich_help_panel="Search"),
    seed: Optional[int] = typer.Option(None, help="Random seed \\[default: 0].", rich_help_panel="Search"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:N or auto \\[default: cpu].", rich_help_panel="Execution"),
    workers_per_device: Optional[int] = typer.Option(None, "--workers-per-device", help="Local workers per GPU of "
                                                     "--devices when --workers is not given \\[default: 4].",
                                                     rich_help_panel="Execution"),
    precision: Optional[str] = typer.Option(None, help="fp32 (exact, reproducible), tf32 (CUDA) or bf16 (mixed "
                                            "bfloat16; torch backend) \\[default: fp32].", rich_help_panel="Execution"),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Where to write the run "
                                                                    "\\[default: runs/<problem>-<strategy>-<matcher>-<time>].",
                                                                    rich_help_panel="Run directory"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with any of these options "
                                                                 "(command-line options win).", rich_help_panel="Run directory"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory.",
                                          rich_help_panel="Run directory"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run already in --run-dir.",
                                   rich_help_panel="Run directory"),
    force_change: bool = typer.Option(False, "--force-change", help="With --resume: allow changing a setting that "
                                      "defines candidates (problem, matcher, epochs, seed...); recorded as a new "
                                      "segment of the run.", rich_help_panel="Run directory"),
) -> None:
    """Search the problem's space; every candidate starts from its provider's matched weights."""
    from ..run.config import load_config_file, resolve_config
    from ..run.options import merge, parse_assignment
    from ..search.scheduler import run_search

    cli_options: dict[str, dict[str, Any]] = {}
    cli_values: dict[str, Any] = dict(problem=problem, space=str(space) if space else None, data=str(data) if data else None,
                      data_dir=str(data_dir) if data_dir else None, synthetic=synthetic, samples=samples,
                      features=features, backend=backend, strategy=strategy, selector=selector, matcher=matcher,
                      executor=executor, max_evals=max_evals, time_budget=time_budget, epochs=epochs, controls=controls,
                      keep=keep, keep_top=keep_top, tau_reserve=tau_reserve, max_checkpoints=max_checkpoints,
                      population=population, sample=sample, workers=workers, threads_per_worker=threads_per_worker,
                      devices=devices, workers_per_device=workers_per_device,
                      gpus_per_worker=gpus_per_worker, ray_address=ray_address,
                      max_jobs_per_worker=max_jobs_per_worker, seed=seed, device=device, precision=precision,
                      run_dir=str(run_dir) if run_dir else None, options=cli_options)
    for text in option or ():
        ref, name, value = parse_assignment(text)
        merge(cli_options, {ref: {name: value}})
    if force_change and resume is None:
        from ..errors import ConfigError

        raise ConfigError("--force-change only applies with --resume (a new run takes any settings)")
    observer = RichObserver()
    try:
        if resume is not None:
            overrides = {k: v for k, v in cli_values.items() if v is not None}
            summary = run_search(resume=resume, observer=observer, overrides=overrides, force_change=force_change)
        else:
            file_values = load_config_file(config) if config else {}
            summary = run_search(resolve_config(file_values, cli_values), observer=observer, overwrite=overwrite)
    finally:
        observer.close()
    if summary is None:  # this process served as a worker (an MPI rank > 0)
        return
    print_summary(summary)
    if summary.interrupted:
        raise typer.Exit(130)


def print_summary(summary) -> None:
    table = Table(title=f"top candidates of {summary.run_dir}")
    rungs = bool(summary.promotions)   # a promoting strategy (asha): candidates trained for different epochs
    for col in ("id", "score", *(("epochs",) if rungs else ()), "arch_seq", "params", "provider", "transferred"):
        table.add_column(col, overflow="fold")
    for r in summary.top:
        provider = "-" if r["provider_id"] is None else str(r["provider_id"])
        table.add_row(str(r["id"]), fmt_score(r["score"]), *((str(r.get("epochs") or "-"),) if rungs else ()),
                      ",".join(map(str, r["arch_seq"])), fmt_int(r["num_params"]), provider,
                      f"{r['n_transferred']}/{r['n_tensors']}")
    console.print(table)
    promoted = f", {summary.promotions} promotions" if rungs else ""
    console.print(f"{summary.done} of {summary.total} candidates done ({summary.failed} failed){promoted}, "
                  f"{summary.transfer_rate:.0%} started from transferred weights, "
                  f"{summary.elapsed_s:.1f} s")
    stats = summary.controls
    if stats.n:
        tau = f", Kendall tau warm vs scratch {stats.tau:.2f}" if stats.n >= 3 else ""
        console.print(f"Inheritance lift {stats.lift:+.4f} ± {stats.lift_ci:.4f} (warm − scratch score, 95% CI) over "
                      f"{stats.n} controls{tau}")
    console.print(f"Results: {summary.run_dir}/ (results.csv, wtnas.sqlite, checkpoints/)")
    if summary.interrupted or summary.done < summary.total and not summary.stopped_by_time:
        console.print(f"Resume with: [bold]wtnas run --resume {summary.run_dir}[/]")
    elif summary.best:
        console.print(f"Next: [bold]wtnas topk {summary.run_dir}[/]  (fully train the top 10 with early "
                      f"stopping), then [bold]wtnas report {summary.run_dir}[/]")


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
