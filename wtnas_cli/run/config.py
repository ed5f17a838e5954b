"""Run configuration: defaults < `--config FILE.toml` < command-line options.

The file is plain TOML with the same keys as the `wtnas run` options (dashes or underscores), and
a table per component for the options a component declares (`[options.ray]`, options.py).
Nothing in it is executed. Unknown keys and wrong types are refused with the file and key named.
"""

from __future__ import annotations

import math
import sys
from dataclasses import InitVar, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .options import ALIASES, alias_entries, entries, merge

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# share of the candidates with a provider that also train from scratch (search/controls.py); the
# measured cost is in docs/benchmarks.md
CONTROLS_DEFAULT = 0.1


@dataclass
class RunConfig:
    problem: str = "digits"
    space: str | None = None
    data: str | None = None
    data_dir: str | None = None
    backend: str = "torch"
    strategy: str = "evolution"
    selector: str = "auto"
    matcher: str = "lcs"
    executor: str = "local"
    max_evals: int = 200
    time_budget: float | None = None
    epochs: int = 1
    controls: float = CONTROLS_DEFAULT
    keep: str = "needed"      # checkpoints: delete those nothing can need (retention.py), or keep all
    keep_top: int = 50        # --keep needed: the best this many stay for wtnas topk
    tau_reserve: int = 30     # --keep needed: a uniform sample this large stays for topk --tau-sample
    max_checkpoints: int | None = None   # --keep needed: cap for selectors that may use any checkpoint
    workers: int | None = None
    threads_per_worker: int | None = None
    devices: str | None = None
    # local workers per GPU of --devices when --workers is not given (None: WORKERS_PER_DEVICE)
    workers_per_device: int | None = None
    max_jobs_per_worker: int | None = None
    seed: int = 0
    device: str = "cpu"
    # the number format of training: "fp32" (exact, reproducible across devices and backends),
    # "tf32" (CUDA tensor cores' float32 matmuls), "bf16" (mixed bfloat16); backends declare theirs
    precision: str = "fp32"
    run_dir: str | None = None
    # the options of the components the run uses, {component: {option: value}} (options.py);
    # after a run resolved them, {"KIND.NAME": {...}}, every declared option with its value
    options: dict = field(default_factory=dict)
    # the flags that predate component options, kept as aliases of the run's component's option
    # (options.ALIASES): e.g. population=20 is options={"strategy": {"population": 20}}
    population: InitVar[int | None] = None
    sample: InitVar[int | None] = None
    ray_address: InitVar[str | None] = None
    gpus_per_worker: InitVar[float | None] = None
    synthetic: InitVar[bool | None] = None
    samples: InitVar[int | None] = None
    features: InitVar[int | None] = None

    def __post_init__(self, population, sample, ray_address, gpus_per_worker, synthetic, samples, features):
        aliases = alias_entries(dict(population=population, sample=sample, ray_address=ray_address,
                                     gpus_per_worker=gpus_per_worker, synthetic=synthetic, samples=samples,
                                     features=features))
        self.options = merge(aliases, entries(self.options, "options"))

    def options_of(self, kind: str, name: str) -> dict:
        """The options set for component `name` of `kind` (all of them once a run resolved them)."""
        out: dict = {}
        for ref in (kind, name, f"{kind}.{name}"):
            out.update(self.options.get(ref, {}))
        return out

    def validate(self) -> "RunConfig":
        """One line per bad setting, naming the flag, the config-file key and the value given."""
        s = self
        checks = [
            (s.max_evals >= 1, "max_evals", "must be at least 1"),
            (s.epochs >= 1, "epochs", "must be at least 1"),
            (0.0 <= s.controls <= 1.0, "controls", "must be a fraction between 0 and 1"),
            (s.keep in ("needed", "all"), "keep", "must be 'needed' or 'all'"),
            (s.keep_top >= 0, "keep_top", "must be 0 or more"),
            (s.tau_reserve >= 0, "tau_reserve", "must be 0 or more"),
            (s.max_checkpoints is None or s.max_checkpoints >= 1, "max_checkpoints", "must be at least 1"),
            (s.workers is None or s.workers >= 1, "workers", "must be at least 1"),
            (s.threads_per_worker is None or s.threads_per_worker >= 1, "threads_per_worker", "must be at least 1"),
            (s.workers_per_device is None or s.workers_per_device >= 1, "workers_per_device", "must be at least 1"),
            (s.max_jobs_per_worker is None or s.max_jobs_per_worker >= 1, "max_jobs_per_worker", "must be at least 1"),
            (s.time_budget is None or s.time_budget > 0, "time_budget", "must be positive (seconds)"),
            (s.seed >= 0, "seed", "must be non-negative"),
            (s.precision in PRECISIONS, "precision", f"must be one of {', '.join(PRECISIONS)}"),
        ]
        for ok, key, requirement in checks:
            if not ok:
                raise ConfigError(f"--{key.replace('_', '-')} {requirement}, got {getattr(s, key)!r} "
                                  f"(`{key}` in a config file)")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def problem_options(self) -> dict:
        """What the problem factory receives: the data paths every problem may take (absolute:
        workers may run elsewhere) and the problem's own options."""
        options: dict[str, Any] = {"space": self.space, "data": self.data, "data_dir": self.data_dir}
        for key in ("space", "data", "data_dir"):
            if options[key]:
                options[key] = str(Path(options[key]).resolve())
        options.update(self.options_of("problem", self.problem))
        return {k: v for k, v in options.items() if v is not None}

    def executor_options(self) -> dict:
        """What every executor factory receives, beside its own options (options_of)."""
        from ..util.devices import resolve_devices

        devices = resolve_devices(self.devices)
        per_device = self.workers_per_device or WORKERS_PER_DEVICE
        return {"workers": self.workers or (len(devices) * per_device or None), "threads_per_worker": self.threads_per_worker,
                "devices": devices, "max_jobs_per_worker": self.max_jobs_per_worker}


_TYPES = {f.name: f.type for f in fields(RunConfig) if f.name != "options"}


def _expected(name: str) -> tuple[type, ...]:
    t = str(_TYPES[name])
    if t == "bool":
        return (bool,)
    if "float" in t:
        return (int, float)
    if "int" in t:
        return (int,)
    return (str,)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read and check a TOML config file; return its values keyed like RunConfig fields."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name == "options":
            values[name] = entries(value, f"{path}: [options]")
            continue
        if name in ALIASES:   # an old flat key: checked against the option it stands for
            values[name] = value
            continue
        if name not in _TYPES:
            valid = ", ".join(sorted([*_TYPES, *ALIASES]))
            raise ConfigError(f"{path}: unknown key {key!r}; valid keys: {valid} (and [options.COMPONENT] tables)")
        expected = _expected(name)
        if isinstance(value, bool) != (expected == (bool,)) or not isinstance(value, expected):
            kinds: dict[tuple[type, ...], str] = {(int,): "an integer", (int, float): "a number", (str,): "a string",
                                                  (bool,): "true or false"}
            kind = kinds[expected]
            raise ConfigError(f"{path}: key {key!r} must be {kind}, got {value!r}")
        values[name] = value
    return values


def settings_and_options(values: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, dict]]:
    """One source's settings and its component options (the old flat keys among them)."""
    values = {k: v for k, v in (values or {}).items() if v is not None}
    options = alias_entries(values)
    return values, merge(options, entries(values.pop("options", None), "options"))


def resolve_config(file_values: dict[str, Any] | None = None, cli_values: dict[str, Any] | None = None) -> RunConfig:
    (merged, options), (cli, cli_options) = settings_and_options(file_values), settings_and_options(cli_values)
    merged.update(cli)
    if merged.get("space") and "problem" not in merged:
        merged["problem"] = "file"  # --space FILE means the user's own problem
    return RunConfig(**merged, options=merge(options, cli_options)).validate()


PRECISIONS = ("fp32", "tf32", "bf16")
# one worker left a GPU ~95% idle (issue #32: an H200 on cifar10 candidates ran 0.57 candidates/s
# with 1 worker, 1.24/s with 8 time-slicing it); 4 per device until bench_gpu.py measures the best
WORKERS_PER_DEVICE = 4

# settings `--resume` may change: how much to run and where, not what a candidate is (and the
# options of the kinds in options.RESUMABLE_KINDS: the executor's)
RESUMABLE = frozenset({"max_evals", "time_budget", "executor", "workers", "threads_per_worker", "devices",
                       "workers_per_device", "max_jobs_per_worker", "device", "controls", "run_dir", "keep",
                       "keep_top", "tau_reserve", "max_checkpoints"})


def to_toml(values: dict[str, Any]) -> str:
    """run.toml: flat `key = value` lines (None values are omitted: they mean 'default'), then one
    `[options.KIND.NAME]` table per component with options."""
    values = dict(values)
    options = values.pop("options", None) or {}
    tables = "".join(f"\n[options.{'.'.join(_toml_key(p, 'run.toml options') for p in ref.split('.', 1))}]\n"
                     + toml_document(opts, what=f"run.toml options.{ref}") for ref, opts in options.items() if opts)
    return toml_document(values, what="run.toml") + tables


def toml_document(values: dict[str, Any], what: str) -> str:
    """`values` as TOML, one `key = value` line per top-level key (lists and tables inline); keys
    whose value is None are left out (None means the default). `what` names the document in errors."""
    return "".join(f"{_toml_key(k, f'{what} {k}')} = {_toml_value(v, f'{what} {k}')}\n"
                   for k, v in values.items() if v is not None)


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                   .replace("\r", "\\r").replace("\t", "\\t"))
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v, f"{where}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        items = [(k, v) for k, v in value.items() if v is not None]
        return "{" + ", ".join(f"{_toml_key(k, where)} = {_toml_value(v, f'{where}.{k}')}" for k, v in items) + "}"
    if value is None:
        raise ConfigError(f"{where}: None has no TOML form; leave the key out, or write a .yaml file")
    raise ConfigError(f"{where}: {type(value).__name__} {value!r} is not a number, string, list or table")


def _toml_key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise ConfigError(f"{where}: key {key!r} must be a string")
    bare = key and all(c.isalnum() or c in "_-" for c in key)
    return key if bare else _toml_value(key, where)
