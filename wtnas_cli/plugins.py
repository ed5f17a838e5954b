"""Plugin discovery: a pluggy manager fed from the `wtnas` entry-point group.

Built-in components live in `plugins/` and are found through the same entry points as any
third-party `wtnas-<thing>` package. Environment controls:
    WTNAS_DISABLE_PLUGINS=a,b   block these plugins (entry-point names)
    WTNAS_LOAD_PLUGINS=a,b      load only these plugins (an allow-list)
A plugin that fails to import or to register is reported (`wtnas plugins`) and skipped, never
a traceback; two components with the same name are an error naming both plugins.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterable

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import KINDS, Registry

ENTRY_POINT_GROUP = "wtnas"
DISTRIBUTION = "wtnas"   # this package: its entry points are the built-in plugins

_REGISTER_HOOKS = {
    "backend": "wtnas_register_backends",
    "strategy": "wtnas_register_strategies",
    "selector": "wtnas_register_selectors",
    "matcher": "wtnas_register_matchers",
    "executor": "wtnas_register_executors",
    "problem": "wtnas_register_problems",
    "format": "wtnas_register_export_formats",
}


@dataclass
class Plugins:
    """A plugin manager plus the components its plugins registered."""

    pm: pluggy.PluginManager
    registry: Registry
    broken: list[tuple[str, str]] = field(default_factory=list)  # (plugin, reason)

    @property
    def hook(self):
        return self.pm.hook


def _names_from_env(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


def get_plugin_manager(*, entry_points: bool = True, plugins: Iterable[object] = (),
                       skip_distribution: str | None = None) -> tuple[pluggy.PluginManager, list]:
    """A fresh manager: specs → blocked names → entry points (or allow-list; none of
    `skip_distribution`'s) → extra plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    broken: list[tuple[str, str]] = []
    for name in _names_from_env("WTNAS_DISABLE_PLUGINS") or ():
        pm.set_blocked(name)
    if entry_points:
        allow = _names_from_env("WTNAS_LOAD_PLUGINS")
        seen: set[str] = set()
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in seen or pm.is_blocked(ep.name) or (allow is not None and ep.name not in allow):
                continue
            if skip_distribution is not None and ep.dist is not None and ep.dist.name == skip_distribution:
                continue
            seen.add(ep.name)
            try:
                module = ep.load()
            except Exception as exc:  # a broken third-party plugin must not break wtnas
                broken.append((ep.name, f"import failed: {type(exc).__name__}: {exc}"))
                continue
            _register(pm, module, ep.name, broken)
    for plugin in plugins:
        _register(pm, plugin, getattr(plugin, "__name__", None) or type(plugin).__name__, broken)
    return pm, broken


def _register(pm: pluggy.PluginManager, plugin: object, name: str, broken: list) -> None:
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        broken.append((name, f"rejected: {exc}"))


def build_registry(pm: pluggy.PluginManager, broken: list | None = None) -> Registry:
    """Call every registration hook implementation with a `register` bound to its plugin."""
    registry = Registry()
    broken = [] if broken is None else broken
    for kind in KINDS:
        caller = getattr(pm.hook, _REGISTER_HOOKS[kind])
        for impl in reversed(caller.get_hookimpls()):
            try:
                impl.function(register=registry.registrar(kind, impl.plugin_name))
            except PluginError:
                raise
            except Exception as exc:
                broken.append((impl.plugin_name, f"{_REGISTER_HOOKS[kind]} failed: {type(exc).__name__}: {exc}"))
    return registry


def load_plugins(*, entry_points: bool = True, plugins: Iterable[object] = ()) -> Plugins:
    pm, broken = get_plugin_manager(entry_points=entry_points, plugins=plugins)
    registry = build_registry(pm, broken)
    return Plugins(pm, registry, broken)


@lru_cache(maxsize=1)
def default_plugins() -> Plugins:
    """The process-wide plugin set used by the CLI and by workers (tests make their own)."""
    return load_plugins()


def command_plugins() -> pluggy.PluginManager:
    """The plugins that may add commands: every installed one except wtnas's own built-ins,
    which register components only. Every `wtnas` invocation, `--help` included, asks for
    commands first, and the built-ins import numpy and the problems (most of `--help`'s time)."""
    pm, _ = get_plugin_manager(skip_distribution=DISTRIBUTION)
    return pm


def notify(plugins: Plugins, hook: str, warn: Callable[[str], None], failed: set, **kwargs) -> None:
    """Call a notification hook (a tracker, a notifier) plugin by plugin: one that raises is
    reported through `warn` once per command (`failed` remembers it) and skipped, never the end
    of a search or a top-K training. Ctrl-C still goes through."""
    for impl in getattr(plugins.hook, hook).get_hookimpls():
        try:
            impl.function(**kwargs)
        except Exception as exc:  # noqa: BLE001 - a plugin's failure must not stop the command
            key = (hook, impl.plugin_name)
            if key not in failed:
                failed.add(key)
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                warn(f"plugin {impl.plugin_name}: {hook} failed ({type(exc).__name__}: {text}); "
                     f"wtnas goes on without it (reported once)")
