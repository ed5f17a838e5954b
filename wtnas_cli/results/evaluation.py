"""`wtnas evaluate`: one trained model scored on data nobody selected with: the run's held-out test
split, or a labelled data set the user gives in the form the run's problem reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..model.problem import Dataset, as_inputs, objective_name
from ..model.spacefile import labelled_arrays, parse_space
from ..plugins.manager import Plugins, default_plugins
from ..run.config import RunConfig
from .candidate import load_candidate, run_config, run_problem
from .exporting import applied_normalization, choose


@dataclass
class Evaluation:
    """What `wtnas evaluate` measured (`--json` prints `to_dict()`)."""

    run_dir: str
    candidate_id: int
    source: str          # "topk" or "search": which checkpoint (the one `wtnas export` picks by default)
    data: str            # "test split", or the file or directory given
    samples: int
    objective: str
    value: float
    validation: float | None   # the objective the model was chosen by, for comparison
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(run_dir: str | Path, candidate_id: int | None = None, *, source: str | None = None,
             data: str | Path | None = None, plugins: Plugins | None = None,
             threads: int | None = None) -> Evaluation:
    """Score one model of `run_dir` (by default the one `wtnas export` picks) on the run's test
    split, or on `data`: a `--data-dir`-style directory for a built-in problem (its test files),
    a data file of the space file's form for a `--space` run (all its samples). The run's stored
    normalization is applied as in training. One-line errors for data that does not fit."""
    run_dir = Path(run_dir)
    plugins = plugins or default_plugins()
    choice = choose(run_dir, candidate_id, source)
    run_cfg = run_config(run_dir, plugins)
    problem = run_problem(run_cfg, plugins)
    if data is None:
        held = problem.data()
        if not held.has_test:
            raise ConfigError(f"{run_dir} has no test split (a run made before wtnas had test splits, or -o "
                              f"{run_cfg.problem}.test_split=false): give --data PATH, labelled data in the form "
                              f"its problem reads")
        view, where = held.test_view(), "test split"
    else:
        view, where = _given(run_dir, run_cfg, problem, Path(data), plugins), str(data)
    backend = plugins.registry.create("backend", run_cfg.backend)
    backend.configure(threads=threads, device="cpu")
    model = load_candidate(problem, backend, choice.arch_seq, choice.checkpoint)
    value = float(model.evaluate(view))
    return Evaluation(str(run_dir), choice.candidate_id, choice.source, where, len(view.y_val),
                      objective_name(problem.objective), value, choice.score,
                      dict(getattr(model, "last_metrics", None) or {}))


def _given(run_dir: Path, run_cfg: RunConfig, problem, path: Path, plugins: Plugins) -> Dataset:
    """The user's labelled data as a Dataset whose validation split is what gets scored."""
    if not path.exists():
        raise ConfigError(f"--data {path}: no such file or directory")
    if run_cfg.problem == "file":
        space, settings = parse_space(Path(run_cfg.problem_options()["space"]))
        problem.data()   # (the run's data: the class names its named labels are numbered by)
        xs, y = labelled_arrays(space, settings, path, problem.loss, "--data", problem.class_names)
        _check_fits(problem, xs, y, path)
        norm = applied_normalization(run_dir)
        if norm is not None:   # as every worker applied it in training
            xs = norm.apply(xs)
    else:
        options = run_cfg.problem_options()
        if options.get("synthetic"):
            raise ConfigError(f"--data {path}: {run_dir} searched synthetic {run_cfg.problem} data; its models can "
                              f"be evaluated on its own test split (drop --data)")
        if not path.is_dir():
            raise ConfigError(f"--data {path}: problem {run_cfg.problem!r} reads a directory (as --data-dir); give "
                              f"the directory holding its files")
        loaded = plugins.registry.create("problem", run_cfg.problem, **{**options, "data_dir": str(path)}).data()
        xs = as_inputs(loaded.x_test if loaded.has_test else loaded.x_val)
        y = loaded.y_test if loaded.has_test else loaded.y_val
        _check_fits(problem, xs, y, path)
    x = xs[0] if len(xs) == 1 else xs
    return Dataset(x, y, x, y)   # (backends score x_val; the training slots are never read here)


def _check_fits(problem, xs: list[np.ndarray], y: np.ndarray, path: Path) -> None:
    """Shapes per input and class labels the model can output, or one line naming what differs."""
    inputs = problem.space.inputs
    if len(xs) != len(inputs):
        raise ConfigError(f"--data {path}: {len(xs)} input arrays, the run's space has {len(inputs)}")
    for inp, x in zip(inputs, xs):
        if tuple(x.shape[1:]) != tuple(inp.shape) or len(x) != len(y):
            raise ConfigError(f"--data {path}: input {inp.name!r} is {list(x.shape)} with {len(y)} labels; the run's "
                              f"models take {len(y)} samples of shape {list(inp.shape)}")
    if problem.loss == "categorical_crossentropy" and len(y):
        classes = problem.space.output_units()
        if int(y.max()) >= classes or int(y.min()) < 0:
            raise ConfigError(f"--data {path}: labels {int(y.min())}..{int(y.max())}, the run's models know classes "
                              f"0..{classes - 1}")
