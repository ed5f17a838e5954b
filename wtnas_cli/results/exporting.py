"""`wtnas export`: one candidate of a run as a standalone model file (Keras, PyTorch, ONNX...).

Which candidate: `--id N`, or the best model that exists: the best model `wtnas topk` trained if
it ran (fully trained beats a search estimate), else the search's best. Formats come from plugins
(hook `wtnas_register_export_formats`): the core names none of them. An exporter names the
backend that builds the model it writes; the candidate's checkpoint (canonical layout) loads into
that backend whatever backend trained it. The file is checked before it gets its name: loaded
back as a user would load it, it must predict what `model.predict` (the function `evaluate`
scores) predicts; then it is renamed into place, so no partial or wrong file is ever left.

A run whose space file normalizes its data (`data.normalize`) stored the statistics training saw
(RUN/normalization.json); the exporter writes them into the file, in front of the model, so the
file takes raw inputs (what the user's data file holds). It is checked on raw validation inputs
against wtnas's predictions on the same inputs normalized with the stored statistics.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, WtnasError
from ..model.normalize import Normalization, load_normalization
from ..model.problem import as_inputs
from ..plugins.manager import Plugins, default_plugins
from ..run.rundir import STORE_NAME, checkpoint_path
from ..run.store import RunStore
from .candidate import load_candidate, run_config, run_problem

SOURCES = ("search", "topk")
VERIFY_SAMPLES = 1000  # validation samples the written file must reproduce
TOLERANCE = 1e-5       # largest accepted |file - wtnas| prediction difference (relative to outputs > 1)


@dataclass
class Choice:
    """The candidate to export and where its weights come from."""

    candidate_id: int
    source: str          # "search" or "topk"
    score: float | None  # search: the estimated score; topk: the objective after full training
    checkpoint: Path
    arch_seq: list[int]
    detail: str = ""     # topk: how it started (warm or scratch)

    def describe(self) -> str:
        score = "-" if self.score is None else f"{self.score:.4f}"
        what = (f"search score {score}" if self.source == "search"
                else f"fully trained by topk, {self.detail}: score {score}")
        return f"candidate {self.candidate_id} ({what}; {self.checkpoint})"


@dataclass
class ExportResult:
    choice: Choice
    format: str
    path: Path
    layout: str
    inputs: str          # the model's inputs, e.g. "image (N, 8, 8, 1)"
    max_abs_diff: float
    verified_on: str
    normalization: str | None = None   # the method the file applies to raw inputs, if any
    class_names: list[str] | None = None   # what output unit i means, when the data named its classes


def _existing(stored: str | None, fallback: Path) -> Path | None:
    """A checkpoint at its stored path, or under the run directory if the run was moved."""
    for p in (Path(stored) if stored else None, fallback):
        if p is not None and p.is_file():
            return p
    return None


def _search_choice(run_dir: Path, row: dict) -> Choice | None:
    if row["status"] != "ok" or row["checkpoint_deleted"]:
        return None
    ckpt = _existing(row["checkpoint"], checkpoint_path(run_dir, row["id"]))
    return Choice(row["id"], "search", row["score"], ckpt, list(row["arch_seq"])) if ckpt else None


def _topk_choice(run_dir: Path, row: dict, arch_seq: list[int]) -> Choice | None:
    if row["status"] != "ok" or not row["checkpoint"]:
        return None
    ckpt = _existing(row["checkpoint"], run_dir / "topk" / Path(row["checkpoint"]).name)
    return Choice(row["candidate_id"], "topk", row["objective_final"], ckpt, arch_seq,
                  f"{row['mode']} start") if ckpt else None


def _best(choices: list[Choice]) -> Choice | None:
    """Highest score, then lowest id (the order `wtnas topk` and the report use)."""
    ranked = sorted(choices, key=lambda c: (-(c.score if c.score is not None else -np.inf), c.candidate_id))
    return ranked[0] if ranked else None


def choose(run_dir: str | Path, candidate_id: int | None = None, source: str | None = None) -> Choice:
    """The model `wtnas export` takes (see the module docstring); one-line errors otherwise."""
    run_dir = Path(run_dir)
    run_config(run_dir)   # refuses a directory that holds no run
    if source is not None and source not in SOURCES:
        raise ConfigError(f"--from {source!r}: choose one of {', '.join(SOURCES)}")
    store = RunStore(run_dir / STORE_NAME)
    try:
        rows = store.candidates()
        trained = store.trained()
    finally:
        store.close()
    by_id = {r["id"]: r for r in rows}
    if candidate_id is not None and candidate_id not in by_id:
        span = f"ids {min(by_id)}-{max(by_id)}" if by_id else "no candidates yet"
        raise ConfigError(f"--id {candidate_id}: {run_dir} has no candidate {candidate_id} ({span})")
    topk_rows = [_topk_choice(run_dir, r, list(by_id[r["candidate_id"]]["arch_seq"])) for r in trained
            if r["candidate_id"] in by_id and candidate_id in (None, r["candidate_id"])]
    topk = [c for c in topk_rows if c is not None]
    if source == "topk" or (source is None and topk):
        if not topk:
            if candidate_id is None:
                raise ConfigError(f"--from topk: {run_dir} has no model trained by `wtnas topk`; run "
                                  f"`wtnas topk {run_dir}` first, or use --from search")
            done = sorted({r["candidate_id"] for r in trained if r["status"] == "ok"})
            raise ConfigError(f"--id {candidate_id} --from topk: `wtnas topk` did not train candidate {candidate_id}"
                              f" (it trained: {', '.join(map(str, done)) or 'none'}); use --from search")
        best = _best(topk)
        assert best is not None   # topk is not empty here
        return best
    if candidate_id is not None:
        row = by_id[candidate_id]
        choice = _search_choice(run_dir, row)
        if choice is None:
            why = (f"failed ({(row['error'] or '').splitlines()[0] if row['error'] else 'no error recorded'})"
                   if row["status"] == "failed" else
                   "is still pending" if row["status"] != "ok" else
                   "has no checkpoint left (deleted by --keep needed, or removed)")
            raise ConfigError(f"--id {candidate_id}: candidate {candidate_id} {why}; choose another --id "
                              f"(`wtnas report {run_dir}` lists them) or omit it for the best")
        return choice
    choice = _best([c for c in (_search_choice(run_dir, r) for r in rows) if c is not None])
    if choice is None:
        raise ConfigError(f"{run_dir}: no finished candidate with a checkpoint to export")
    return choice


def check_output(output: str | Path, suffix: str, fmt: str) -> Path:
    """The output path, refused in one line if it cannot be written as asked."""
    output = Path(output)
    if output.is_dir():
        raise ConfigError(f"-o {output} is a directory; give a file name such as {output / ('model' + suffix)}")
    if output.suffix != suffix:
        raise ConfigError(f"-o {output}: --format {fmt} writes {suffix} files; name it {output.stem}{suffix}")
    if not output.parent.is_dir():
        raise ConfigError(f"-o {output}: directory {output.parent} does not exist; create it first")
    if not os.access(output.parent, os.W_OK):
        raise ConfigError(f"-o {output}: directory {output.parent} is not writable; choose another -o")
    return output


def format_for(output: str | Path, plugins: Plugins) -> str:
    """The format an output name implies (for `--format` left out)."""
    suffix = Path(output).suffix
    for component in plugins.registry.all("format"):
        try:
            if component.available and component.create().suffix == suffix:
                return component.name
        except WtnasError:
            continue
    names = ", ".join(plugins.registry.names("format"))
    raise ConfigError(f"-o {output}: give --format ({names}); the name's ending {suffix or '(none)'} does not say")


def export_model(run_dir: str | Path, fmt: str, output: str | Path, *, candidate_id: int | None = None,
                 source: str | None = None, plugins: Plugins | None = None, threads: int | None = None) -> ExportResult:
    """Write one candidate of `run_dir` as a `fmt` file at `output`, checked against wtnas's own
    predictions on validation data before it is renamed into place."""
    plugins = plugins or default_plugins()
    try:
        component = plugins.registry.get("format", fmt)
    except WtnasError as exc:
        raise ConfigError(f"--format: {exc}") from None
    choice = choose(run_dir, candidate_id, source)
    exporter = component.create()
    output = check_output(output, exporter.suffix, fmt)
    run_cfg = run_config(run_dir, plugins)
    problem = run_problem(run_cfg, plugins)
    backend = plugins.registry.create("backend", exporter.backend)
    backend.configure(threads=threads, device="cpu")
    model = load_candidate(problem, backend, choice.arch_seq, choice.checkpoint)
    norm = applied_normalization(run_dir)
    options = {}
    if norm is not None:
        if "normalization" not in inspect.signature(exporter.export).parameters:
            raise ConfigError(f"--format {fmt}: {run_dir} normalizes its inputs (data.normalize = {norm.method!r}) "
                              f"and the {component.plugin} plugin's exporter cannot write that into the file; "
                              f"nothing written")
        options["normalization"] = norm
    inputs, verified_on = _check_inputs(problem, norm)   # raw inputs: what the file takes
    seen = norm.apply(inputs) if norm is not None else inputs   # what the model saw in training
    expected = np.asarray(model.predict(seen if len(seen) > 1 else seen[0]))

    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.tmp-", suffix=exporter.suffix, dir=output.parent)
    os.close(fd)
    try:
        os.unlink(tmp)   # exporters write the file themselves (some refuse to overwrite)
        exporter.export(model, tmp, [a[:8] for a in inputs], **options)
        got = np.asarray(exporter.predict(tmp, inputs))
        if got.shape != expected.shape:
            raise WtnasError(f"--format {fmt}: the written model predicts shape {got.shape}, wtnas {expected.shape}; "
                             f"nothing written (a bug in the {component.plugin} plugin: please report it)")
        diff = float(np.max(np.abs(got.astype(np.float64) - expected))) if got.size else 0.0
        if not diff <= TOLERANCE * max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0):
            raise WtnasError(f"--format {fmt}: the written model's predictions differ from wtnas's by {diff:.3g} "
                             f"(more than {TOLERANCE:g}); nothing written (please report it)")
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    inputs_text = ", ".join(f"{i.name} (N, {', '.join(map(str, i.shape))})" for i in problem.space.inputs)
    return ExportResult(choice, fmt, output, exporter.layout, inputs_text, diff, verified_on,
                        norm.method if norm is not None else None, problem.class_names)


def applied_normalization(run_dir: str | Path) -> Normalization | None:
    """The statistics an export of `run_dir` writes into the file: the ones stored with the run
    (not recomputed from today's data file); None when the run normalizes nothing."""
    norm = load_normalization(run_dir)
    if norm is None or norm.method == "none" or not norm.inputs:
        return None
    return norm


def _check_inputs(problem, norm: Normalization | None = None) -> tuple[list[np.ndarray], str]:
    """Raw inputs to compare the written file with wtnas on: the first validation samples as the
    data file holds them, or seeded random inputs of the right shapes (spread as the stored
    statistics say, if any) when the data cannot be loaded here."""
    try:
        x = (problem.raw_data() if norm is not None else problem.data()).x_val
        arrays: list[np.ndarray] = [np.ascontiguousarray(np.asarray(a, np.float32)[:VERIFY_SAMPLES])
                                    for a in as_inputs(x)]
        if len(arrays[0]):
            return arrays, f"{len(arrays[0])} validation samples"
        reason = "the validation split is empty"
    except (WtnasError, OSError) as exc:
        reason = f"the data did not load: {exc}"
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((64,) + tuple(i.shape)) for i in problem.space.inputs]
    if norm is not None:
        arrays = [a * np.asarray(spec["scale"]) + np.asarray(spec["shift"]) for a, spec in zip(arrays, norm.inputs)]
    arrays = [a.astype(np.float32) for a in arrays]
    return arrays, f"64 random inputs ({reason})"
