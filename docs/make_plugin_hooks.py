"""Regenerate docs/plugin-hooks.md from the hook specifications' docstrings:
python docs/make_plugin_hooks.py (a test checks that every hook is documented)."""

import inspect
import textwrap
from pathlib import Path

from wtnas_cli import hookspecs


def main() -> None:
    intro = inspect.getdoc(hookspecs).split("\n\n", 1)[1]
    out = ["# Plugin hooks", "", "Generated from `wtnas_cli/hookspecs.py` by `docs/make_plugin_hooks.py`. "
           "Implement hooks with the marker `wtnas_cli.hookspecs.hookimpl`; a walkthrough is in "
           "[writing-plugins.md](writing-plugins.md).", "", intro]
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("wtnas_"):
            doc = inspect.getdoc(fn)
            head, sep, code = doc.partition("::\n")
            if sep:  # an 'Example::' block becomes a fenced code block
                doc = f"{head}:\n\n```python\n{textwrap.dedent(code).strip()}\n```"
            out += ["", f"## `{name}{inspect.signature(fn)}`", "", doc]
    (Path(__file__).parent / "plugin-hooks.md").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
