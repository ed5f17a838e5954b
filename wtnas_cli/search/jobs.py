"""Jobs for a run's candidates, built one way for the search, its controls and top-K training:
the run's problem, backend and their options, plus what the job itself asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..plugins.manager import Plugins
from ..run.config import RunConfig
from ..run.job import Job
from ..run.rundir import checkpoint_path
from .controls import control_job


def candidate_seed(run_seed: int, candidate_id: int) -> int:
    return (run_seed * 1_000_003 + candidate_id * 7_919 + 17) % (2 ** 31 - 1)


def candidate_job(cfg: RunConfig, cid: int, arch_seq: Sequence[int], *, device: str, plugin_set: dict | None,
                  checkpoint: str, seed: int, epochs: int, matcher: str, problem_options: dict | None = None,
                  **job_fields: Any) -> Job:
    """A job for candidate `cid` of the run `cfg`; `job_fields` are the Job's other fields (a
    provider, early stopping...). `problem_options`: the run's, when the caller computed them once."""
    return Job(candidate_id=cid, arch_seq=list(arch_seq), problem=cfg.problem, backend=cfg.backend,
               matcher=matcher, epochs=epochs, seed=seed, checkpoint_path=checkpoint, device=device,
               precision=cfg.precision,
               problem_options=cfg.problem_options() if problem_options is None else problem_options,
               backend_options=cfg.options_of("backend", cfg.backend), plugins=plugin_set, **job_fields)


def search_job(cfg: RunConfig, run_dir: Path, cid: int, arch_seq: Sequence[int], device: str,
               plugin_set: dict | None, *, provider_id: int | None = None, provider_checkpoint: str | None = None,
               problem_options: dict | None = None) -> Job:
    """A candidate's search job: the run's matcher and epochs, seeded by the run's seed and its id."""
    return candidate_job(cfg, cid, arch_seq, device=device, plugin_set=plugin_set,
                         checkpoint=str(checkpoint_path(run_dir, cid)), seed=candidate_seed(cfg.seed, cid),
                         epochs=cfg.epochs, matcher=cfg.matcher, problem_options=problem_options,
                         matcher_options=cfg.options_of("matcher", cfg.matcher), provider_id=provider_id,
                         provider_checkpoint=provider_checkpoint)


def scratch_twin(cfg: RunConfig, run_dir: Path, cid: int, arch_seq, device: str, plugin_set: dict | None) -> Job:
    """A candidate's search job from random weights (its control, or a top-K check): same seed
    and budget, no provider, no checkpoint."""
    return control_job(search_job(cfg, run_dir, cid, arch_seq, device, plugin_set))


def create_executor(cfg: RunConfig, plugins: Plugins, workers: int | None = None) -> tuple[Any, str]:
    """The run's executor (the backend's max_jobs_per_worker trait filled in) and the device its
    jobs train on: workers that were each given one GPU see it as 'cuda'."""
    options = cfg.executor_options()
    options["max_jobs_per_worker"] = (cfg.max_jobs_per_worker
                                      or plugins.registry.get("backend", cfg.backend).traits.get("max_jobs_per_worker"))
    if workers:
        options["workers"] = workers
    executor = plugins.registry.create("executor", cfg.executor, **options, **cfg.options_of("executor", cfg.executor))
    return executor, "cuda" if options["devices"] else cfg.device

