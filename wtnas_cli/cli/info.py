"""`wtnas plugins` and `wtnas spaces`: what is installed and what the search spaces look like."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..errors import WtnasError
from ..plugins.registry import KINDS
from ..util.text import did_you_mean
from .common import console, fmt_size


def plugins_command(
    name: Optional[str] = typer.Argument(None, metavar="NAME", help="One component: its full description and options."),
    options: bool = typer.Option(False, "--options", help="List the options each component declares "
                                 "(set them with `wtnas run -o COMPONENT.OPTION=VALUE`)."),
    long: bool = typer.Option(False, "--long", help="Full descriptions (and install hints) instead of one line each."),
) -> None:
    """List every component by kind, the plugin that registered it, and whether it is available."""
    from ..plugins.manager import default_plugins

    plugins = default_plugins()
    if name is not None:
        component_details(plugins.registry, name)
        return
    if options:
        options_table(plugins.registry)
        return
    rows = []
    for kind in KINDS:
        for c in plugins.registry.all(kind):
            hint = escape(c.hint)
            status = "[green]yes[/]" if c.available else ("[red]no[/]: " + hint if long else "[red]no[/]")
            rows.append((kind, escape(c.name), escape(c.plugin), status,
                         escape(c.description if long else summary(c.description))))
    for plugin, hooks in hook_only_plugins(plugins):   # e.g. a tracker: notification hooks, no component
        rows.append(("hooks", escape(", ".join(hooks)), escape(plugin), "[green]yes[/]", ""))
    table = Table(title="wtnas components" + ("" if long else " (wtnas plugins NAME or --long: the full text)"))
    used = 1
    for i, col in enumerate(("kind", "name", "plugin", "ok")):   # one line each; the description gets the rest
        width = max([len(col)] + [len(Text.from_markup(r[i]).plain) for r in rows])
        table.add_column(col, no_wrap=True, min_width=None if long else width)
        used += width + 3
    table.add_column("description", no_wrap=not long, overflow="fold" if long else "ellipsis",
                     max_width=None if long else max(10, console.width - used - 3))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for plugin, reason in plugins.broken:
        console.print(f"[red]broken plugin[/] {escape(plugin)}: {escape(reason)}", soft_wrap=True)


def summary(description: str) -> str:
    """A description's head, up to its first colon, semicolon or parenthesis: one short line."""
    head = re.split(r"[:;(]", description, maxsplit=1)[0].strip()
    return head or description


def component_details(registry, name: str) -> None:
    """Every component called `name` (kinds may share a name): kind, plugin, availability, the full
    description and its options."""
    found = [c for kind in KINDS for c in registry.all(kind) if c.name == name]
    if not found:
        names = sorted({c.name for kind in KINDS for c in registry.all(kind)})
        raise WtnasError(f"no component named {name!r}{did_you_mean(name, names)}; `wtnas plugins` lists them")
    for c in found:
        status = "available" if c.available else f"not available: {c.hint}"
        console.print(f"[bold]{escape(c.kind)} {escape(c.name)}[/] (plugin {escape(c.plugin)}; {escape(status)})")
        console.print(escape(c.description))
        for o in c.options:
            console.print(f"  -o {escape(c.name)}.{escape(o.name)}={o.type.__name__.upper()} (default "
                          f"{escape(_default_text(o))}): {escape(o.help)}")


def _default_text(option) -> str:
    """An option's default as a user writes it after -o (booleans lower-case, '-' for none)."""
    if option.default is None:
        return "-"
    return str(option.default).lower() if option.type is bool else str(option.default)


def hook_only_plugins(plugins) -> list[tuple[str, list[str]]]:
    """Loaded plugins that registered no component, with the hooks they implement."""
    with_components = {c.plugin for kind in KINDS for c in plugins.registry.all(kind)}
    found = []
    for name, plugin in sorted(plugins.pm.list_name_plugin(), key=lambda item: str(item[0])):
        if name in with_components or plugin is None:
            continue
        hooks = sorted(caller.name for caller in plugins.pm.get_hookcallers(plugin) or ())
        if hooks:
            found.append((name, hooks))
    return found


def options_table(registry) -> None:
    """Every component's declared options: `wtnas run -o COMPONENT.OPTION=VALUE`, `[options.COMPONENT]`."""
    table = Table(title=escape("component options (wtnas run -o COMPONENT.OPTION=VALUE, or [options.COMPONENT] "
                               "in a config file)"))
    for col in ("kind", "component", "option", "type", "default", "help"):
        table.add_column(col, overflow="fold")
    for kind in KINDS:
        for c in registry.all(kind):
            for o in c.options:
                table.add_row(kind, escape(c.name), escape(o.name), o.type.__name__, escape(_default_text(o)),
                              escape(o.help))
    console.print(table)


def spaces_command(
    problem: Optional[str] = typer.Argument(None, metavar="PROBLEM",
                                            help="Show this problem's variable nodes (default: list all)."),
    arch_seq: Optional[str] = typer.Option(None, "--arch-seq", help="Decode this architecture, e.g. 0,2,1,..."),
    space: Optional[Path] = typer.Option(None, "--space", help="Show a search-space file (.toml, .yaml)."),
) -> None:
    """List problems with their number of variable nodes and search-space size."""
    from ..model.problem import objective_name
    from ..plugins.manager import default_plugins

    reg = default_plugins().registry
    if space is not None:
        problem = "file"
    if problem is None and arch_seq is not None:
        raise WtnasError("--arch-seq needs a PROBLEM (or --space FILE) to decode it against, "
                         "e.g. `wtnas spaces digits --arch-seq 0,2,1`")
    if problem is None:
        table = Table(title="search spaces")
        for col in ("problem", "variable nodes", "size", "objective", "description"):
            table.add_column(col)
        for c in reg.all("problem"):
            try:
                p = c.create()
            except WtnasError as exc:  # e.g. `file` needs --space
                table.add_row(c.name, "-", "-", "-", f"{c.description} ({exc})")
                continue
            table.add_row(c.name, str(len(p.space.variable_nodes)), fmt_size(p.space.size), objective_name(p.objective),
                          p.description)
        console.print(table)
        return
    p = reg.create("problem", problem, **({"space": str(space)} if space is not None else {}))
    search_space = p.space
    if arch_seq is None:
        table = Table(title=f"{p.name}: {len(search_space.variable_nodes)} variable nodes, size {search_space.size:,}")
        for col in ("#", "node", "choices"):
            table.add_column(col)
        for i, node in enumerate(search_space.variable_nodes):
            table.add_row(str(i), node.name, "  ".join(f"{k}:{op.label()}" for k, op in enumerate(node.choices)))
        console.print(table)
        return
    from ..model.space import parse_arch_seq

    arch = search_space.resolve(parse_arch_seq(arch_seq))
    table = Table(title=f"{p.name} arch_seq {list(arch.arch_seq)}: {arch.num_params:,} parameters")
    for col in ("layer", "op", "output shape", "weight tensors"):
        table.add_column(col)
    for layer in arch.layers:
        table.add_row(layer.name, layer.op.label(), str(layer.output_shape),
                      ", ".join(f"{w.role}{w.shape}" for w in layer.weights))
    console.print(table)
    console.print(f"shape sequence ({len(arch.shape_sequence())} tensors): {arch.shape_sequence()}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins_command)
    app.command("spaces")(spaces_command)
