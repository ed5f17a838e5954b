"""Jobs and results: plain data (ints, strings, lists, dicts) so any executor can ship them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

TIMING_KEYS = ("build_s", "ckpt_read_s", "match_s", "copy_s", "train_s", "eval_s", "ckpt_write_s")


@dataclass
class Job:
    candidate_id: int
    arch_seq: list[int]
    problem: str
    backend: str
    matcher: str
    epochs: int
    seed: int
    checkpoint_path: str
    provider_id: int | None = None
    provider_checkpoint: str | None = None
    device: str = "cpu"
    precision: str = "fp32"   # the run's --precision (config.PRECISIONS): how the backend trains
    problem_options: dict[str, Any] = field(default_factory=dict)
    # the options the user set for the run's backend and matcher (options.py)
    backend_options: dict[str, Any] = field(default_factory=dict)
    matcher_options: dict[str, Any] = field(default_factory=dict)
    # Top-K training: with `patience` set, the objective is evaluated after every epoch and
    # Keras-style early stopping is tracked (and applied when `early_stop`); `epochs` is the cap.
    patience: int | None = None
    min_delta: float = 0.0
    early_stop: bool = True
    # "start": the model is scored before its first epoch and must beat that score (a warm
    # start its checkpoint; one that never does keeps its starting weights); "first-epoch": the
    # first epoch sets the reference (Keras' default)
    stop_reference: str = "first-epoch"
    # score the trained model once on the problem's test split, after training (top-K models):
    # the score is reported, never used to choose or to stop
    score_test: bool = False
    # "candidate"; "control": the same architecture trained from scratch beside it (search/controls.py);
    # "promotion": `epochs` more epochs for a candidate, from its own checkpoint (`checkpoint_path`,
    # weights and optimizer state), which the job then replaces (successive halving's rungs)
    role: str = "candidate"
    # epochs the weights have already trained (a promotion's start): epoch seeds continue from
    # there, so r + (R - r) epochs in two jobs are R epochs in one
    start_epoch: int = 0
    # the rung this job trains its candidate to (promoting strategies, e.g. asha); None otherwise
    rung: int | None = None
    # write the optimizer's state into the checkpoint (when the backend offers it), so that a
    # promotion continues the optimizer too
    keep_optimizer: bool = False
    write_checkpoint: bool = True
    # checkpoints the scheduler has marked deleted (committed) since its last job: the worker
    # removes them before it trains, so file-system work stays off the scheduler (retention.py)
    remove_checkpoints: list[str] = field(default_factory=list)
    # the scheduler's plugin set (plugins.PluginSet.to_dict()): the worker evaluates the job with
    # exactly these plugins; None: the worker's default set. Carried by the job rather than given
    # at worker start-up, so every executor, a third-party one included, ships it unawares
    plugins: dict[str, Any] | None = None

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Job":
        return cls(**d)


@dataclass
class Result:
    candidate_id: int
    status: str  # "ok" | "failed"
    role: str = "candidate"  # the job's role, echoed so the scheduler knows what came back
    rung: int | None = None  # the job's rung, echoed likewise
    score: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # beside the objective, e.g. mae, mse
    num_params: int | None = None
    n_transferred: int = 0
    n_tensors: int = 0
    n_partial: int = 0           # transferred tensors of which only the overlapping block was copied
    transfer_share: float = 0.0  # share of the receiver's parameters that came from the provider
    n_role_crossed: int = 0      # transferred tensors whose role differs from the provider's (shape-only matchers)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    # "disk_full": not the candidate's fault; the run stops and re-runs it on resume. "device_oom":
    # the device ran out of memory (workers sharing it): the candidate fails with that reason, the run goes on
    fault: str | None = None
    events: list[str] = field(default_factory=list)
    checkpoint_path: str | None = None
    checkpoint_bytes: int | None = None
    worker: str = ""
    worker_rss_mb: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    # per-epoch objective and early-stopping outcome (top-K training jobs only)
    curve: list[float] = field(default_factory=list)
    epochs_trained: int = 0
    stop_epoch: int | None = None
    score_at_stop: float | None = None
    start_score: float | None = None   # the objective before the first epoch (stop_reference "start")
    # the trained model's objective and metrics on the test split (Job.score_test; None: no test split)
    test_score: float | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Result":
        return cls(**d)


def _plain(obj) -> dict:
    """Fields as a dict with list and dict values copied one level (every field is flat plain
    data): `dataclasses.asdict` deep-copies recursively, and even `fields()` plus `getattr` per
    field is a measurable cost per job at scale; a dataclass's instance dict holds its fields."""
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        names = _FIELD_NAMES[type(obj)] = tuple(f.name for f in fields(obj))
    values = obj.__dict__
    return {name: list(value) if type(value) is list else dict(value) if type(value) is dict else value
            for name, value in ((name, values[name]) for name in names)}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
