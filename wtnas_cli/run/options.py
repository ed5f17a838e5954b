"""The run's option values, resolved against the `Option`s its components declare
(`wtnas_cli/plugins/option.py`).

A component's factory receives each of its options as a keyword argument, the default filled
in. Users set them
per component, never in core: `wtnas run -o ray.address=HEAD:6379`, `[options.ray]` in a config
file, `api.run(options={"ray.address": ...})`. A reference names a component (`ray`), a kind and
a component where a name is registered for two kinds (`matcher.none`), or a kind alone (`strategy`:
whichever strategy the run uses; how the old flags such as `--population` are implemented).

Only the components a run uses take options: an option for a component the run does not use,
an option a component does not declare, or a value of the wrong type is a one-line error naming
the key, the component and its options. This module imports no registry: a `Registry` is passed in.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, PluginError, WtnasError
from ..plugins.option import Text
from ..util.text import did_you_mean

# the flags (and flat config keys) that predate component options: flag -> (kind, option)
ALIASES = {"population": ("strategy", "population"), "sample": ("strategy", "sample"),
           "ray_address": ("executor", "address"), "gpus_per_worker": ("executor", "gpus_per_worker"),
           "synthetic": ("problem", "synthetic"), "samples": ("problem", "samples"),
           "features": ("problem", "features")}

# which kinds' options may change on `--resume`: how a run is executed, not what a candidate is
RESUMABLE_KINDS = frozenset({"executor"})


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
    line); not strict (a stored run.toml, written by an older wtnas) leaves it out, and an option
    the stored run lacks takes its `before` value: the run stays what it was."""
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
            values[kind].setdefault(o.name, o.default if strict or o.before is None else o.before)
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
    where = describe(ref, opt)
    declared = {o.name: o for o in comp.options}
    if opt not in declared:
        listed = ", ".join(declared) or "none"
        raise ConfigError(f"{where}: {comp.kind} {comp.name!r} has no option {opt!r}{did_you_mean(opt, declared)}; "
                          f"its options: {listed}")
    return declared[opt].check(value, where)
