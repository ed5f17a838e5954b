"""Plugin discovery: a pluggy manager fed from the `wtnas` entry-point group.

Built-in components live in `plugins/` and are found through the same entry points as any
third-party `wtnas-<thing>` package. Environment controls:
    WTNAS_DISABLE_PLUGINS=a,b   block these plugins (entry-point names)
    WTNAS_LOAD_PLUGINS=a,b      load only these plugins (an allow-list)
A plugin that fails to import or to register is reported (`wtnas plugins`) and skipped, never
a traceback; two components with the same name are an error naming both plugins.

A plugin set describes itself as plain data (`PluginSet`): whether entry points were loaded,
the allow/deny lists in effect then, and the extra plugins by module name. Every job carries
it, and a worker evaluates the job with exactly that set (`plugins_for`), whatever its own
environment says, so `fresh_plugins(mymodule)` reaches the workers of every executor.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import types
from dataclasses import dataclass, field
from typing import Callable, Iterable

import pluggy

from ..errors import PluginError
from . import hookspecs
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


# the component kinds a worker creates (search/evaluator.py); every other kind lives in the scheduler
WORKER_KINDS = ("problem", "backend", "matcher")


@dataclass(frozen=True)
class PluginSet:
    """How a plugin set was made, as plain data a job can carry to a worker on any machine.

    `load`/`disable` are the WTNAS_LOAD_PLUGINS / WTNAS_DISABLE_PLUGINS names in effect when it
    was loaded (recorded, so a worker's own environment cannot change the set); `modules` are the
    extra plugins by importable module name, registered after the entry points, in order."""

    entry_points: bool = True
    load: tuple[str, ...] | None = None
    disable: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"entry_points": self.entry_points, "load": None if self.load is None else list(self.load),
                "disable": list(self.disable), "modules": list(self.modules)}

    @classmethod
    def from_dict(cls, d: dict) -> "PluginSet":
        load = d.get("load")
        return cls(bool(d.get("entry_points", True)), None if load is None else tuple(load),
                   tuple(d.get("disable", ())), tuple(d.get("modules", ())))


@dataclass
class Plugins:
    """A plugin manager plus the components its plugins registered."""

    pm: pluggy.PluginManager
    registry: Registry
    broken: list[tuple[str, str]] = field(default_factory=list)  # (plugin, reason)
    spec: PluginSet = field(default_factory=PluginSet)
    # extra plugins that are no importable module (a class, an instance): the scheduler has them,
    # workers cannot rebuild them
    local_only: tuple[str, ...] = ()

    @property
    def hook(self):
        return self.pm.hook

    def worker_spec(self, uses: Iterable[tuple[str, str]] = ()) -> dict:
        """The plugin set jobs carry (`Job.plugins`). `uses` are the (kind, name) components the
        run's workers create; one registered by a plugin that is no importable module cannot
        reach a worker: PluginError naming it."""
        for kind, name in uses:
            plugin = self.registry.get(kind, name).plugin
            if kind in WORKER_KINDS and plugin in self.local_only:
                raise PluginError(f"plugin {plugin!r} registers {kind} {name!r} but is not an importable module: "
                                  f"plugins handed to workers must be importable modules (define it in a module "
                                  f"on the workers' Python path and pass the module to fresh_plugins/load_plugins)")
        return self.spec.to_dict()


def _names_from_env(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


class _FromEnv:
    """Default of `allow`/`deny`: read the list from the environment."""


_FROM_ENV = _FromEnv()


def get_plugin_manager(*, entry_points: bool = True, plugins: Iterable[object] = (),
                       skip_distribution: str | None = None, allow: Iterable[str] | None | _FromEnv = _FROM_ENV,
                       deny: Iterable[str] | _FromEnv = _FROM_ENV) -> tuple[pluggy.PluginManager, list]:
    """A fresh manager: specs → blocked names → entry points (or allow-list; none of
    `skip_distribution`'s) → extra plugins. `allow`/`deny` default to WTNAS_LOAD_PLUGINS /
    WTNAS_DISABLE_PLUGINS."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    broken: list[tuple[str, str]] = []
    if isinstance(deny, _FromEnv):
        deny = _names_from_env("WTNAS_DISABLE_PLUGINS") or ()
    if isinstance(allow, _FromEnv):
        allow = _names_from_env("WTNAS_LOAD_PLUGINS")
    allow = None if allow is None else set(allow)
    for name in deny:
        pm.set_blocked(name)
    if entry_points:
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
    """Installed plugins (filtered by the environment's allow/deny lists) plus `plugins`."""
    plugins = list(plugins)
    load = _names_from_env("WTNAS_LOAD_PLUGINS")
    spec = PluginSet(entry_points, None if load is None else tuple(sorted(load)),
                     tuple(sorted(_names_from_env("WTNAS_DISABLE_PLUGINS") or ())),
                     tuple(name for name in map(_module_name, plugins) if name is not None))
    local_only = tuple(_plugin_name(p) for p in plugins if _module_name(p) is None)
    return _load(spec, plugins, local_only)


def _load(spec: PluginSet, plugins: list, local_only: tuple[str, ...] = ()) -> Plugins:
    pm, broken = get_plugin_manager(entry_points=spec.entry_points, plugins=plugins, allow=spec.load,
                                    deny=spec.disable)
    registry = build_registry(pm, broken)
    return Plugins(pm, registry, broken, spec, local_only)


def _plugin_name(plugin: object) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__name__


def _module_name(plugin: object) -> str | None:
    """The name a worker imports `plugin` by, or None for a class, an instance or a module that
    cannot be imported by name (built in memory; a script's `__main__` run by path)."""
    if not isinstance(plugin, types.ModuleType):
        return None
    spec = getattr(plugin, "__spec__", None)
    name = getattr(spec, "name", None)
    return name if name and name != "__main__" else None


_BY_SPEC: dict[PluginSet, Plugins] = {}


def plugins_for(spec: PluginSet) -> Plugins:
    """The plugin set `spec` describes, loaded once per process (workers call this per job).
    An extra module that cannot be imported here is a PluginError naming it."""
    if spec not in _BY_SPEC:
        modules = []
        for name in spec.modules:
            try:
                modules.append(importlib.import_module(name))
            except Exception as exc:
                raise PluginError(f"plugin module {name!r} cannot be imported in this worker ({type(exc).__name__}: "
                                  f"{exc}); plugins handed to workers must be importable there (PYTHONPATH)") from None
        _BY_SPEC[spec] = _load(spec, modules)
    return _BY_SPEC[spec]


_DEFAULT: list[Plugins] = []


def default_plugins() -> Plugins:
    """The process-wide plugin set used by the CLI and by workers (tests make their own)."""
    if not _DEFAULT:
        plugins = load_plugins()
        _DEFAULT.append(_BY_SPEC.setdefault(plugins.spec, plugins))
    return _DEFAULT[0]


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
