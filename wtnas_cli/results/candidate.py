"""A stored candidate as a live model: its run's problem, its arch_seq built by a backend, its
checkpoint's tensors loaded.

Checkpoints hold tensors in the canonical (Keras) layout, so any backend can load any backend's
checkpoint: a candidate trained with torch can be rebuilt with Keras, and predicts the same.
`wtnas export` uses this; so can notebooks and tests (`wtnas topk` warm-starts through the same
SAME_MODEL match inside a worker).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError, RunDirError
from ..plugins.manager import Plugins, default_plugins
from ..run.config import RunConfig, load_config_file
from ..run.rundir import CONFIG_NAME, is_run_dir, not_a_run
from ..weights.checkpoint import CheckpointReader
from ..weights.matching import MatchError, match_same


def run_config(run_dir: str | Path, plugins: Plugins | None = None) -> RunConfig:
    """The configuration a run was made with (its run.toml), its options settled against the
    plugins' components (leniently: a run.toml of an older wtnas has flat keys, run/options.py)."""
    from ..run.resolver import settle

    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise RunDirError(not_a_run(run_dir, "give the directory of a `wtnas run`"))
    values = load_config_file(run_dir / CONFIG_NAME)
    cfg = RunConfig(**{k: v for k, v in values.items() if k in RunConfig.__dataclass_fields__})
    settle(cfg, (plugins or default_plugins()).registry, strict=False)
    return cfg


def run_problem(run_cfg: RunConfig, plugins: Plugins | None = None):
    """The run's problem, created with the run's options (data paths, --synthetic, ...)."""
    plugins = plugins or default_plugins()
    return plugins.registry.create("problem", run_cfg.problem, **run_cfg.problem_options())


def load_candidate(problem, backend, arch_seq, checkpoint: str | Path):
    """Build `arch_seq` with `backend` (configured) and load every tensor of `checkpoint` into it.
    Refuses a checkpoint of another architecture (CheckpointError, one line)."""
    with CheckpointReader(checkpoint) as reader:
        if list(reader.meta.arch_seq) != list(arch_seq):
            raise CheckpointError(f"{checkpoint} holds arch_seq {list(reader.meta.arch_seq)}, not {list(arch_seq)}")
        model = backend.build(problem, problem.space.resolve(list(arch_seq)), seed=0)
        try:
            pairs = match_same(reader.meta.specs, model.specs)
        except MatchError as exc:
            raise CheckpointError(f"{checkpoint}: {exc}") from None
        tensors = reader.read(i for i, _ in pairs)
    model.set_tensors({j: tensors[i] for i, j in pairs})
    return model
