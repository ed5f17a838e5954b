"""wtnas from Python: the one import path for notebooks and third-party code.

    from wtnas_cli import api

    space = api.space_file("space.toml", {...})          # the TOML vocabulary, as a dict
    summary = api.run(space=space, data="data.csv", max_evals=20, run_dir="runs/a")
    api.topk("runs/a", k=3)
    rows = api.results("runs/a")                          # list of dicts; results_frame(): pandas
    module = api.load_model("runs/a")                     # the best model as a torch nn.Module

Guide with runnable examples: docs/python-api.md.

Stability: the names in `__all__` below are the stable API, covered by semantic versioning
(a breaking change to them bumps the major version). Everything else in `wtnas_cli` (every
other module, and any name here that starts with an underscore) is internal and may change in
any release. Nothing here is a second implementation: the CLI commands call the same library
functions (`run_search`, `run_topk`, `write_report`, `export_model`, `evaluate`, `load_candidate`,
`ancestry`, `load_normalization`); this module re-exports them with defaults fit
for Python (quiet, 1 worker unless asked) and a few thin helpers.

Importing this module imports numpy but no deep-learning framework: torch or Keras load only
when a model is trained or loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError, WtnasError
from .model.normalize import load_normalization
from .results.evaluation import Evaluation, evaluate
from .results.exporting import Choice, ExportResult, choose, export_model
from .results.lineage import ancestry
from .results.report import write_report
from .results.runs import load_candidates
from .results.topk import TopKConfig, TopKSummary, run_topk
from .run.config import RunConfig, toml_document
from .search.scheduler import RunSummary, run_search

__all__ = [
    # helpers
    "space_file", "run", "topk", "results", "results_frame", "best", "load_model", "lineage",
    # re-exported library functions and types
    "RunConfig", "RunSummary", "run_search", "TopKConfig", "TopKSummary", "run_topk", "write_report",
    "export_model", "choose", "Choice", "ExportResult", "evaluate", "Evaluation", "ancestry", "load_normalization",
    "WtnasError",
]

SPACE_SUFFIXES = (".toml", ".yaml", ".yml")


# -- search spaces ------------------------------------------------------------------------------

def space_file(path: str | Path, spec: dict | str | Path) -> Path:
    """Write a search-space file from `spec`, a dict with exactly the structure of a TOML space
    file (docs/search-spaces.md: inputs, nodes, output, loss, objective, data, ...), checked by
    the same parser `wtnas run --space` uses, and return its path. `path` ends in .toml (written
    as TOML) or .yaml/.yml. Workers rebuild the problem from the file, so a space must be a file.

    A `spec` that is a str or Path names an existing space file: it is checked and returned.
    A relative `data.path` in the spec is read relative to the file, as in any space file."""
    from .model.spacefile import parse_space

    if isinstance(spec, (str, Path)):
        parse_space(spec)
        return Path(spec)
    if not isinstance(spec, dict):
        raise ConfigError(f"space_file: spec must be a dict with the TOML structure, got {type(spec).__name__}")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SPACE_SUFFIXES:
        raise ConfigError(f"space_file: {path}: name the file .toml, .yaml or .yml")
    if suffix == ".toml":
        text = toml_document(spec, what="space")
    else:
        import yaml

        text = yaml.safe_dump({k: v for k, v in spec.items() if v is not None}, sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    tmp.write_text(text)
    try:
        parse_space(tmp)
    except WtnasError as exc:
        tmp.unlink(missing_ok=True)
        raise type(exc)(str(exc).replace(str(tmp), str(path))) from None
    os.replace(tmp, path)
    return path


# -- search and top-K ---------------------------------------------------------------------------

def run(problem: str | None = None, *, space: str | Path | None = None, data: str | Path | None = None,
        run_dir: str | Path | None = None, workers: int = 1, observer=None,
        **options) -> RunSummary | None:
    """Run a search and return its summary (`RunSummary`; None on an MPI worker rank); quiet unless an `observer` is given
    (the `search.SearchObserver` protocol). `problem` is a built-in problem name ("digits", ...);
    `space` a space file (e.g. from `space_file`), which means the `file` problem with `data`.
    Other keyword options are `RunConfig` fields (max_evals, epochs, strategy, seed, backend...),
    named as in run.toml, and `options`, the components' own options (`wtnas run -o`) as
    {"ray.address": "head:6379"} or {"ray": {"address": "head:6379"}}; the old keywords
    population, sample, ray_address, ... still work. Resume a run with `run_search(resume=run_dir)`."""
    if problem is None:
        problem = "file" if space is not None else RunConfig.problem
    unknown = sorted(set(options) - set(RunConfig.__dataclass_fields__))
    if unknown:
        from .util.text import did_you_mean

        raise ConfigError(f"run(): unknown option {unknown[0]!r}{did_you_mean(unknown[0], RunConfig.__dataclass_fields__)}"
                          f"; options are RunConfig fields")
    cfg = RunConfig(problem=problem, space=str(space) if space is not None else None,
                    data=str(data) if data is not None else None,
                    run_dir=str(run_dir) if run_dir is not None else None, workers=workers, **options)
    return run_search(cfg, observer=observer)


def topk(run_dir: str | Path, k: int = 10, *, workers: int = 1, observer=None,
         **options) -> TopKSummary | None:   # None on an MPI worker rank
    """Fully train the `k` best candidates of a run (`wtnas topk`); quiet unless an `observer` is
    given. Other keyword options are `TopKConfig` fields (max_epochs, patience, from_scratch...)."""
    unknown = sorted(set(options) - set(TopKConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"topk(): unknown option {unknown[0]!r}; options are TopKConfig fields")
    return run_topk(run_dir, TopKConfig(k=k, workers=workers, **options), observer=observer)


# -- results ------------------------------------------------------------------------------------

def results(run_dir: str | Path) -> list[dict]:
    """Every candidate of a run, one dict per candidate (the run store's rows: id, arch_seq,
    status, score, provider_id, n_transferred, checkpoint, ...), in id order."""
    return load_candidates(run_dir)


def results_frame(run_dir: str | Path):
    """`results(run_dir)` as a pandas DataFrame indexed by candidate id (needs pandas, which
    wtnas does not install)."""
    try:
        import pandas as pd
    except ImportError:
        raise WtnasError("results_frame() needs pandas, which is not installed: pip install pandas "
                         "(or use results(), a list of dicts)") from None
    rows = results(run_dir)
    frame = pd.DataFrame(rows)
    return frame.set_index("id") if "id" in frame.columns else frame


def best(run_dir: str | Path, candidate_id: int | None = None, source: str | None = None) -> Choice:
    """Which candidate `load_model` and `wtnas export` take: `candidate_id`, else the best model
    that exists (topk's best if `wtnas topk` ran, else the search's); `source` "search"/"topk"."""
    return choose(run_dir, candidate_id, source)


def lineage(run_dir: str | Path, candidate_id: int | None = None) -> list[dict]:
    """The chain of a candidate's weights, founder first (`wtnas show RUN ID`); default: the
    search's best candidate."""
    if candidate_id is None:
        candidate_id = choose(run_dir, source="search").candidate_id
    rows = results(run_dir)
    if candidate_id not in {r["id"] for r in rows}:
        raise ConfigError(f"lineage(): {run_dir} has no candidate {candidate_id}")
    return ancestry(rows, candidate_id)


# -- models -------------------------------------------------------------------------------------

def load_model(run_dir: str | Path, candidate_id: int | None = None, framework: str = "torch", *,
               source: str | None = None, raw_inputs: bool = True, threads: int | None = None):
    """A stored candidate as a native model of `framework`: "torch" gives a `torch.nn.Module`
    (`module(*inputs)`, one float32 tensor per input, channels-last (N, ..., C)), "keras" a Keras
    `Model` (`model.predict(x)`). Either computes what wtnas scores (softmax probabilities for
    classification), in eval mode, with the checkpoint's weights; which candidate as `best`.

    A run that normalizes its data (`data.normalize`) gets its stored statistics in front of the
    model, so it takes raw inputs as the data file holds them; `raw_inputs=False` leaves them out."""
    from .plugins.manager import default_plugins
    from .results.candidate import load_candidate, run_config, run_problem
    from .results.exporting import applied_normalization

    plugins = default_plugins()
    names = [n for n in plugins.registry.names("backend")]
    if framework not in names:
        raise ConfigError(f"load_model(): framework {framework!r}: choose one of {', '.join(names)}")
    choice = choose(run_dir, candidate_id, source)
    problem = run_problem(run_config(run_dir, plugins), plugins)
    backend = plugins.registry.create("backend", framework)
    backend.configure(threads=threads, device="cpu")
    model = load_candidate(problem, backend, choice.arch_seq, choice.checkpoint)
    native = getattr(model, "native", None)
    if native is None:
        raise ConfigError(f"load_model(): backend {framework!r} gives no native model (its CandidateModel has "
                          f"no native() method)")
    return native(applied_normalization(run_dir) if raw_inputs else None)
