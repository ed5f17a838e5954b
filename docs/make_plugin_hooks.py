"""Regenerate docs/plugin-hooks.md from the hook specifications' docstrings:
python docs/make_plugin_hooks.py. tests/test_plugins.py checks that the committed file equals
`render()`, so the reference cannot drift from wtnas_cli/plugins/hookspecs.py."""

import inspect
import textwrap
from pathlib import Path

from wtnas_cli.plugins import hookspecs

TARGET = Path(__file__).parent / "plugin-hooks.md"


def hook_specs() -> dict:
    """Every hook specification by name, in alphabetical order."""
    return {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("wtnas_")}


def signature(fn) -> str:
    """`register: Register`: the spec's parameters as written (annotations are strings here)."""
    return ", ".join(f"{p.name}: {p.annotation}" for p in inspect.signature(fn).parameters.values())


def render() -> str:
    intro = inspect.getdoc(hookspecs).split("\n\n", 1)[1]
    out = ["# Plugin hooks", "", "Generated from `wtnas_cli/plugins/hookspecs.py` by `docs/make_plugin_hooks.py`. "
           "Implement hooks with the marker `wtnas_cli.contracts.hookimpl`; a walkthrough is in "
           "[writing-plugins.md](writing-plugins.md).", "", intro]
    for name, fn in hook_specs().items():
        doc = inspect.getdoc(fn)
        head, sep, code = doc.partition("::\n")
        if sep:  # an 'Example::' block becomes a fenced code block
            doc = f"{head}:\n\n```python\n{textwrap.dedent(code).strip()}\n```"
        out += ["", f"## `{name}({signature(fn)})`", "", doc]
    return "\n".join(out) + "\n"


def main() -> None:
    TARGET.write_text(render())


if __name__ == "__main__":
    main()
