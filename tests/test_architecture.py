"""docs/architecture.md is the map of wtnas_cli/: it cannot drift from the tree, and its layer
table is the one `lint-imports` enforces (pyproject.toml)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PACKAGE = ROOT / "wtnas_cli"
DOC = (ROOT / "docs" / "architecture.md").read_text()


def _section(title: str) -> str:
    head = f"\n### {title}\n"
    assert head in DOC, f"docs/architecture.md has no section {title!r}"
    return DOC.split(head, 1)[1].split("\n#", 1)[0]


def _first_column(table: str) -> set[str]:
    return {m for line in table.splitlines() if line.startswith("| `")
            for m in re.findall(r"`([a-z_]+\.py|[a-z_]+/)`", line.split("|")[1])}


def _subpackages() -> list[str]:
    return sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())


def test_every_subpackage_has_a_table_naming_exactly_its_modules():
    for sub in _subpackages():
        if sub == "cli":
            continue
        modules = {p.name for p in (PACKAGE / sub).glob("*.py") if p.name != "__init__.py"}
        named = _first_column(_section(f"`{sub}/`"))
        assert named == modules, (f"docs/architecture.md's `{sub}/` table: lacks {sorted(modules - named)}, "
                                  f"names missing {sorted(named - modules)}")


def test_the_root_table_names_the_root_modules_and_the_cli():
    modules = {p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    named = _first_column(_section("root"))
    assert named == modules | {"cli/"}, f"root table: {sorted(named)} vs {sorted(modules)}"
    cli = {p.name for p in (PACKAGE / "cli").glob("*.py") if p.name != "__init__.py"}
    row = next(line for line in _section("root").splitlines() if line.startswith("| `cli/`"))
    assert cli == set(re.findall(r"`([a-z_]+\.py)`", row)), "the cli/ row names every command module"


def test_at_most_eight_modules_sit_directly_in_the_package():
    assert len(list(PACKAGE.glob("*.py"))) <= 8


def test_the_layer_table_is_the_one_lint_imports_enforces():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in config if c["type"] == "layers")["layers"]
    enforced = [sorted(name.strip().removeprefix("wtnas_cli.") for name in re.split(r"[|:]", layer))
                for layer in layers]
    table = DOC.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[2] for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    documented = [sorted(m.rstrip("/").removesuffix(".py") for m in re.findall(r"`([a-z_]+(?:\.py|/))`", row))
                  for row in rows]
    assert documented == enforced
    every = {name for layer in enforced for name in layer}
    on_disk = {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")} | set(_subpackages())
    assert every == on_disk, "every module and subpackage of wtnas_cli/ sits in exactly one layer"


def _imports(path):
    """Every wtnas_cli module `path` imports, at the top, in functions or under TYPE_CHECKING."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            yield ".".join(base + ([node.module] if node.module else []))
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_published_plugins_import_only_the_public_surface():
    """The example and MLflow packages (not installed by the README's command, so not in
    lint-imports' graph) import only contracts, api and testing of wtnas, and no other plugin."""
    public = {"wtnas_cli", "wtnas_cli.contracts", "wtnas_cli.api", "wtnas_cli.testing"}
    plugins = {"wtnas_builtins", "wtnas_torch", "wtnas_keras", "wtnas_ray", "wtnas_mpi", "wtnas_example", "wtnas_mlflow"}
    for package in ("wtnas-example", "wtnas-mlflow"):
        own = package.replace("-", "_")
        for path in (ROOT / "plugins" / package).rglob("*.py"):
            found = set(_imports(path))
            used = {m for m in found if m.split(".")[0] == "wtnas_cli"}
            assert used <= public, f"{path.relative_to(ROOT)} imports {sorted(used - public)}"
            others = {m for m in found if m.split(".")[0] in plugins - {own}}
            assert not others, f"{path.relative_to(ROOT)} imports another plugin: {sorted(others)}"


def test_lint_imports_keeps_every_contract():
    """The layer rule, no cycles, plugins apart from core and from each other (pyproject.toml)."""
    env_path = ":".join(p for p in sys.path if p)
    out = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                          "lint_imports_command()"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
