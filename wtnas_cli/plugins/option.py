"""What a component declares: its `Option`s (name, type, default, help), checked on registration.

A component registers its options (`register(..., options=[Option("address", str, None, "...")])`);
its factory then receives each one as a keyword argument, the default filled in. The run's values
for them are resolved in `wtnas_cli.run.options`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, PluginError

TYPES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


class Text(str):
    """A value typed on the command line (`-o KEY=VALUE`): parsed to the option's type. Values
    from a config file or Python keep their own type and must already have the right one."""


@dataclass(frozen=True)
class Option:
    """One option of a component: its `name` (a keyword of the factory), `type` (int, float, str
    or bool), `default` (given to the factory when the user sets nothing; None = unset) and
    `help` (one line for `wtnas plugins --options`). `min` bounds a number from below. `before`:
    the value that reproduces what runs made before the option existed did (their stored settings
    lack it); None: the default does."""

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    min: float | None = None
    before: Any = None

    def check(self, value: Any, where: str) -> Any:
        """`value` as this option's type, or a one-line ConfigError naming `where`."""
        if isinstance(value, Text) and self.type is not str:
            value = _parse(value, self.type)
        ok = (isinstance(value, bool) if self.type is bool else
              isinstance(value, self.type) and not isinstance(value, bool) if self.type is int else
              isinstance(value, (int, float)) and not isinstance(value, bool) if self.type is float else
              isinstance(value, str))
        if not ok:
            raise ConfigError(f"{where} must be {TYPES[self.type]}, got {value!r}")
        if self.type is float:
            value = float(value)
        if self.min is not None and value < self.min:
            raise ConfigError(f"{where} must be at least {self.min:g}, got {value!r}")
        return str(value) if self.type is str else value


def _parse(text: str, kind: type) -> Any:
    t = text.strip()
    if kind is bool:
        lowered = t.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        return text
    try:
        return kind(t)
    except ValueError:
        return text


def declared(options: Any, where: str) -> tuple[Option, ...]:
    """Check a registration's `options=` sequence (names unique, types known, defaults typed)."""
    out: list[Option] = []
    for opt in options or ():
        if not isinstance(opt, Option):
            raise PluginError(f"{where}: options must be Option(name, type, default, help) instances, got {opt!r}")
        if not opt.name.isidentifier():
            raise PluginError(f"{where}: option name {opt.name!r} is not a Python identifier (the factory's keyword)")
        if opt.type not in TYPES:
            raise PluginError(f"{where}: option {opt.name!r} has type {opt.type!r}; use int, float, str or bool")
        if any(o.name == opt.name for o in out):
            raise PluginError(f"{where}: option {opt.name!r} is declared twice")
        for what, value in (("default", opt.default), ("before", opt.before)):
            if value is not None:
                try:
                    opt.check(value, f"{where}: option {opt.name!r} {what}")
                except ConfigError as exc:
                    raise PluginError(str(exc)) from None
        out.append(opt)
    return tuple(out)
