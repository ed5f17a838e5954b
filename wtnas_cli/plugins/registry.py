"""Components registered by plugins, looked up by kind and name.

A component has `traits` (what the rest of wtnas may know about it: a matcher that is the
baseline, a backend's `max_jobs_per_worker`, a strategy's `default_selector`...) and `options`
(what a user may set: `Option`s, plugins/option.py; its factory receives them as keyword arguments).

A component is available when every module it `requires` is importable; we check that with
`importlib.util.find_spec`, which imports nothing, so listing plugins stays fast and works without
torch & co.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from ..errors import PluginError
from ..util.install import install_hint
from .option import Option, declared

KINDS = ("backend", "strategy", "selector", "matcher", "executor", "problem", "format")


@dataclass
class Component:
    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    requires: tuple[str, ...] = ()
    install_hint: str = ""
    description: str = ""
    traits: dict = field(default_factory=dict)  # hints for the rest of wtnas, e.g. max_jobs_per_worker
    options: tuple[Option, ...] = ()            # what users may set; the factory's keyword arguments
    _missing: list[str] | None = field(default=None, repr=False)

    @property
    def missing(self) -> list[str]:
        """Required modules that are not installed."""
        if self._missing is None:
            self._missing = [m for m in self.requires if not _module_exists(m)]
        return self._missing

    @property
    def available(self) -> bool:
        return not self.missing

    @property
    def hint(self) -> str:
        """How to make it available here: its install hint (naming a source checkout when run from
        one), else the modules it needs."""
        return install_hint(self.install_hint) if self.install_hint else "needs " + ", ".join(self.missing)

    def create(self, *args, **kwargs) -> Any:
        if not self.available:
            hint = f"; install it with: {install_hint(self.install_hint)}" if self.install_hint else ""
            raise PluginError(f"{self.kind} {self.name!r} needs {', '.join(self.missing)}, which is not "
                              f"installed{hint}")
        defaults = {o.name: o.default for o in self.options}
        return self.factory(*args, **{**defaults, **kwargs})


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class Register(Protocol):
    """The `register` callable a registration hook receives, bound to one kind of component."""

    def __call__(self, name: str, factory: Callable[..., Any], *, requires: Sequence[str] = (),
                 install_hint: str = "", description: str = "", traits: Mapping[str, Any] | None = None,
                 options: Sequence[Option] | Mapping[str, Any] = ()) -> None: ...


class Registry:
    """All components of one plugin manager, by kind and name."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component]] = {k: {} for k in KINDS}

    def add(self, component: Component) -> None:
        table = self._components[component.kind]
        existing = table.get(component.name)
        if existing is not None:
            raise PluginError(f"{component.kind} name {component.name!r} is registered twice: by plugin "
                              f"{existing.plugin!r} and by plugin {component.plugin!r}; uninstall or disable "
                              f"one (WTNAS_DISABLE_PLUGINS={component.plugin})")
        table[component.name] = component

    def registrar(self, kind: str, plugin: str) -> Register:
        def register(name: str, factory: Callable[..., Any], *, requires=(), install_hint: str = "",
                     description: str = "", traits: Mapping | None = None, options=()) -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {plugin!r} registered a {kind} without a name")
            if isinstance(options, Mapping):   # the old spelling of traits: still accepted
                traits, options = {**options, **(traits or {})}, ()
            self.add(Component(kind, name, factory, plugin, tuple(requires), install_hint, description,
                               dict(traits or {}), declared(options, f"plugin {plugin!r}, {kind} {name!r}")))
        return register

    def kinds(self) -> tuple[str, ...]:
        return KINDS

    def names(self, kind: str) -> list[str]:
        return sorted(self._components[kind])

    def all(self, kind: str) -> list[Component]:
        return [self._components[kind][n] for n in self.names(kind)]

    def get(self, kind: str, name: str) -> Component:
        table = self._components[kind]
        if name not in table:   # a component chosen by another flag (trait chosen_by) is named by that flag
            valid = ", ".join(sorted(n for n, c in table.items() if not c.traits.get("chosen_by"))
                              + sorted({str(c.traits["chosen_by"]) for c in table.values() if c.traits.get("chosen_by")})
                              ) or "none installed"
            plural = "strategies" if kind == "strategy" else f"{kind}s"
            raise PluginError(f"unknown {kind} {name!r}; valid {plural}: {valid}")
        return table[name]

    def create(self, kind: str, name: str, *args, **kwargs) -> Any:
        return self.get(kind, name).create(*args, **kwargs)
