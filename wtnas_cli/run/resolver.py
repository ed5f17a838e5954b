"""Which components a run uses and the option values it runs with, resolved against the
plugins' registry; and what a resumed run continues with (`resume_config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, PluginError
from ..plugins.manager import default_plugins
from .config import RESUMABLE, RunConfig, resolve_config, settings_and_options
from .options import RESUMABLE_KINDS, merge, resolve
from .scheme import run_selector


def used_components(cfg, registry, *, strict: bool = True) -> dict[str, Any]:
    """kind -> Component for every component the run `cfg` uses (its selector resolved: `auto`
    is the strategy's choice). Not `strict`: components that are not registered are left out."""
    names = {"problem": cfg.problem, "backend": cfg.backend, "strategy": cfg.strategy, "matcher": cfg.matcher,
             "executor": cfg.executor}
    used = {}
    for kind, name in names.items():
        try:
            used[kind] = registry.get(kind, name)
        except PluginError:
            if strict:
                raise
    try:
        used["selector"] = registry.get("selector", run_selector(cfg, registry))
    except (PluginError, ConfigError):
        if strict:
            raise
    return used


def settle(cfg, registry, *, strict: bool = True) -> dict[str, dict[str, Any]]:
    """Resolve `cfg.options` against the components `cfg` uses and store them back in the form
    run.toml keeps ({"KIND.NAME": {option: value}}, defaults filled in, unset ones left out), so
    every later reader (workers, top-K, resume) needs no registry. Returns {kind: {option: value}}."""
    used = used_components(cfg, registry, strict=strict)
    values = resolve(cfg.options, used, registry, strict=strict)
    cfg.options = {f"{kind}.{used[kind].name}": set_ for kind in used
                   if (set_ := {k: v for k, v in values[kind].items() if v is not None})}
    return values


def resume_config(stored: dict[str, Any], overrides: dict[str, Any] | None, *, force: bool = False,
                  source: str = "run.toml", registry=None) -> tuple[RunConfig, dict[str, list]]:
    """The configuration a resumed run continues with, and the defining settings the overrides
    change ({key: [old, new]}). Changing one (problem, space, data, backend, strategy and its
    options, selector, matcher, epochs, seed...) would mix two searches in one run: refused
    unless `force`, and then recorded by the caller as a new segment.

    The stored options are read leniently (a run.toml of an older wtnas has flat keys such as
    `population` for every strategy); the overrides strictly, against the components the resumed
    run uses. `registry`: the run's plugins' (default: the installed plugins)."""
    if registry is None:
        registry = default_plugins().registry
    before = resolve_config(stored)
    settle(before, registry, strict=False)
    base = before.to_dict()
    stored_options = base.pop("options")
    overrides, override_options = settings_and_options(overrides)
    cfg = resolve_config(base, overrides)
    used = used_components(cfg, registry)
    kept = {ref: opts for ref, opts in stored_options.items()
            if ref.partition(".")[0] in used and used[ref.partition(".")[0]].name == ref.partition(".")[2]}
    cfg.options = merge(kept, override_options)
    settle(cfg, registry)
    a, b = base, cfg.to_dict()

    def same(key: str) -> bool:
        old, new = a[key], b[key]
        if key in ("space", "data", "data_dir") and old and new:
            return Path(old).resolve() == Path(new).resolve()
        return old == new
    changes = {k: [a[k], b[k]] for k in b if k != "options" and k not in RESUMABLE and not same(k)}
    for ref, opts in cfg.options.items():
        if ref in stored_options and ref.partition(".")[0] not in RESUMABLE_KINDS:
            old_opts = stored_options[ref]
            for opt in sorted(set(opts) | set(old_opts)):
                if opts.get(opt) != old_opts.get(opt):
                    changes[f"{ref.partition('.')[2]}.{opt}"] = [old_opts.get(opt), opts.get(opt)]
    if changes and not force:
        listed = ", ".join(f"{_flag(k, new)} (the run has {old})" for k, (old, new) in changes.items())
        raise ConfigError(f"--resume: {listed} would change what a candidate is, mid-run ({source}); start a new "
                          f"run with --run-dir, or add --force-change to record it as a new segment of this run")
    return cfg, changes


def _flag(key: str, value: Any) -> str:
    return f"-o {key}={value}" if "." in key else f"--{key.replace('_', '-')} {value}"
