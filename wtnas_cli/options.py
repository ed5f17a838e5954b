"""Options a component declares, and the run's option values resolved against them.

A component registers its options (`register(..., options=[Option("address", str, None, "...")])`);
its factory then receives each one as a keyword argument, the default filled in. Users set them
per component, never in core: `wtnas run -o ray.address=HEAD:6379`, `[options.ray]` in a config
file, `api.run(options={"ray.address": ...})`. A reference names a component (`ray`), a kind and
a component where a name is registered for two kinds (`matcher.none`), or a kind alone (`strategy`:
whichever strategy the run uses; how the old flags such as `--population` are implemented).

Only the components a run uses take options: an option for a component the run does not use,
an option a component does not declare, or a value of the wrong type is a one-line error naming
the key, the component and its options. This module imports no registry: a `Registry` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, PluginError, WtnasError

TYPES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}

# the flags (and flat config keys) that predate component options: flag -> (kind, option)
ALIASES = {"population": ("strategy", "population"), "sample": ("strategy", "sample"),
           "ray_address": ("executor", "address"), "gpus_per_worker": ("executor", "gpus_per_worker"),
           "synthetic": ("problem", "synthetic"), "samples": ("problem", "samples"),
           "features": ("problem", "features")}

# which kinds' options may change on `--resume`: how a run is executed, not what a candidate is
RESUMABLE_KINDS = frozenset({"executor"})


class Text(str):
    """A value typed on the command line (`-o KEY=VALUE`): parsed to the option's type. Values
    from a config file or Python keep their own type and must already have the right one."""


@dataclass(frozen=True)
class Option:
    """One option of a component: its `name` (a keyword of the factory), `type` (int, float, str
    or bool), `default` (given to the factory when the user sets nothing; None = unset) and
    `help` (one line for `wtnas plugins --options`). `min` bounds a number from below."""

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    min: float | None = None

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
        if opt.default is not None:
            try:
                opt.check(opt.default, f"{where}: option {opt.name!r} default")
            except ConfigError as exc:
                raise PluginError(str(exc)) from None
        out.append(opt)
    return tuple(out)


# -- user input: {reference: {option: value}} ---------------------------------------------------

def entries(value: Any, where: str, kinds=()) -> dict[str, dict[str, Any]]:
    """Options as the user wrote them (TOML tables, Python dicts) in one form: {reference: {option:
    value}}. Accepts {"ray": {"address": ...}}, {"executor": {"ray": {"address": ...}}} (a kind,
    then its components: tables inside) and flat {"ray.address": ...}. None values are dropped."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of component options, e.g. [options.ray] address = \"head:6379\"")
    out: dict[str, dict[str, Any]] = {}
    for key, inner in value.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}: key {key!r} must be a component name")
        if isinstance(inner, dict):
            if inner and all(isinstance(v, dict) for v in inner.values()):   # a kind, then its components
                for name, opts in inner.items():
                    merge(out, {f"{key}.{name}": _flat_options(opts, f"{where}.{key}.{name}")})
            else:
                merge(out, {key: _flat_options(inner, f"{where}.{key}")})
        elif "." in key:
            ref, _, opt = key.rpartition(".")
            if inner is not None:
                merge(out, {ref: {opt: inner}})
        else:
            raise ConfigError(f"{where}: {key!r} must be a table of its options ([options.{key}]) or "
                              f"COMPONENT.OPTION = value")
    return out


def _flat_options(opts: dict, where: str) -> dict[str, Any]:
    for k, v in opts.items():
        if isinstance(v, dict):
            raise ConfigError(f"{where}.{k}: an option value must be a number, string or boolean, not a table")
    return {k: v for k, v in opts.items() if v is not None}


def parse_assignment(text: str) -> tuple[str, str, Text]:
    """`-o NAME.OPTION=VALUE` (or KIND.NAME.OPTION=VALUE) as (reference, option, value)."""
    key, eq, value = text.partition("=")
    ref, dot, opt = key.strip().rpartition(".")
    if not eq or not dot or not ref or not opt:
        raise ConfigError(f"-o {text!r}: write COMPONENT.OPTION=VALUE, e.g. -o ray.address=head:6379 "
                          f"(`wtnas plugins --options` lists them)")
    return ref, opt, Text(value)


def merge(into: dict[str, dict[str, Any]], more: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`into` with `more` merged in: later values win, option by option (a reference set again
    moves last, so it also wins over another spelling of the same component)."""
    for ref, opts in more.items():
        into[ref] = {**into.pop(ref, {}), **opts}
    return into


def alias_entries(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Pop the old flat keys (`population`, `ray_address`, ...) out of `values` as option entries
    of the run's component of their kind."""
    out: dict[str, dict[str, Any]] = {}
    for key, (kind, opt) in ALIASES.items():
        value = values.pop(key, None)
        if value is not None:
            out.setdefault(kind, {})[opt] = value
    return out


def describe(ref: str, opt: str) -> str:
    """How an error names a key: the old flag for an alias, else the option."""
    for flag, target in ALIASES.items():
        if target == (ref, opt):
            return f"--{flag.replace('_', '-')} (`{flag}` in a config file)"
    return f"option {ref}.{opt}"


# -- resolution against the registry ------------------------------------------------------------

def resolve(refs: dict[str, dict[str, Any]], used: dict[str, Any], registry, *,
            strict: bool = True) -> dict[str, dict[str, Any]]:
    """{kind: {option: value}} for the run's components (`used`: kind -> Component), every declared
    option present (defaults filled in; None = unset). `strict` refuses what does not apply (one
    line); not strict (a stored run.toml, written by an older wtnas) leaves it out."""
    values: dict[str, dict[str, Any]] = {kind: {} for kind in used}
    for ref, opts in refs.items():
        for opt, value in opts.items():
            try:
                kind = _target(ref, used, registry)
                values[kind][opt] = _check(used[kind], ref, opt, value)
            except WtnasError:
                if strict:
                    raise
    for kind, comp in used.items():
        for o in comp.options:
            values[kind].setdefault(o.name, o.default)
    return values


def _target(ref: str, used: dict[str, Any], registry) -> str:
    """The kind whose component `ref` names; refused when the run does not use that component."""
    kinds = registry.kinds()
    if ref in kinds:
        return ref
    head, dot, rest = ref.partition(".")
    if dot and head in kinds:
        kind, name = head, rest
        try:
            registry.get(kind, name)
        except PluginError as exc:   # an unknown name: the registry's line, naming the valid ones
            raise ConfigError(f"options for {ref}: {exc}") from None
    else:
        name = ref
        found = [k for k in kinds if name in registry.names(k)]
        if not found:
            raise ConfigError(f"options for {name!r}: no component has that name (`wtnas plugins --options` "
                              f"lists every component's options)")
        if len(found) > 1:
            raise ConfigError(f"options for {name!r}: {' and '.join(found)} components have that name; write "
                              f"{found[0]}.{name}.OPTION (or [options.{found[0]}.{name}] in a config file)")
        kind = found[0]
    comp = used.get(kind)
    if comp is None or comp.name != name:
        current = comp.name if comp is not None else "none"
        raise ConfigError(f"options for {kind} {name!r}: this run does not use it (--{kind} {current}); drop "
                          f"them, or pass --{kind} {name}")
    return kind


def _check(comp, ref: str, opt: str, value: Any) -> Any:
    from .spacefile import did_you_mean

    where = describe(ref, opt)
    declared = {o.name: o for o in comp.options}
    if opt not in declared:
        listed = ", ".join(declared) or "none"
        raise ConfigError(f"{where}: {comp.kind} {comp.name!r} has no option {opt!r}{did_you_mean(opt, declared)}; "
                          f"its options: {listed}")
    return declared[opt].check(value, where)


def used_components(cfg, registry, *, strict: bool = True) -> dict[str, Any]:
    """kind -> Component for every component the run `cfg` uses (its selector resolved: `auto`
    is the strategy's choice). Not `strict`: components that are not registered are left out."""
    from .scheme import run_selector

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
