"""Plugin system: discovery through real entry points, duplicates, unavailable and broken plugins,
and every hook called."""

import re
import sys
import textwrap

import pytest

from wtnas_cli.errors import PluginError
from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.plugins.manager import load_plugins
from wtnas_cli.plugins.registry import KINDS

from conftest import run_cli


def test_builtins_register_through_entry_points(plugins):
    reg = plugins.registry
    assert set(reg.names("matcher")) >= {"lp", "lcs", "none"}
    assert set(reg.names("selector")) >= {"parent", "nearest", "none"}
    assert set(reg.names("strategy")) >= {"evolution", "random"}
    assert "local" in reg.names("executor") and "digits" in reg.names("problem")
    assert reg.get("backend", "torch").plugin == "torch"
    assert reg.get("matcher", "lcs").plugin == "matchers"
    assert not plugins.broken


def test_unknown_name_lists_valid_names(plugins):
    with pytest.raises(PluginError, match="unknown matcher 'lcx'; valid matchers: lcs, lcs-shape, lcs-slice, lp, lp-shape, none"):
        plugins.registry.get("matcher", "lcx")


class _Dup:
    @staticmethod
    @hookimpl
    def wtnas_register_matchers(register):
        register("lcs", lambda: None)


def test_duplicate_name_names_both_plugins():
    with pytest.raises(PluginError) as err:
        load_plugins(plugins=[_Dup])
    assert "'matchers'" in str(err.value) and "'_Dup'" in str(err.value)


class _Unavailable:
    @staticmethod
    @hookimpl
    def wtnas_register_backends(register):
        register("fancy", lambda: None, requires=("no_such_module_xyz",), install_hint="pip install wtnas-fancy")


def test_unavailable_component_has_install_hint():
    plugins = load_plugins(plugins=[_Unavailable])
    comp = plugins.registry.get("backend", "fancy")
    assert not comp.available and comp.missing == ["no_such_module_xyz"]
    with pytest.raises(PluginError, match="install it with: pip install wtnas-fancy"):
        comp.create()



class _UnavailableExtra:
    @staticmethod
    @hookimpl
    def wtnas_register_backends(register):
        register("fancier", lambda: None, requires=("no_such_module_xyz",),
                 install_hint="pip install 'wtnas[fancier]'  (or conda)")


def test_an_extras_hint_names_the_source_checkout_wtnas_runs_from(tmp_path):
    """In a source checkout `pip install 'wtnas[x]'` would fetch PyPI's wtnas over it: the hint
    names the checkout instead; installed from a registry it stays as the plugin wrote it."""
    from wtnas_cli.util.install import install_hint, source_checkout

    hint = "pip install 'wtnas[keras]'  (CPU build: pip install torch==2.13.0)"
    assert install_hint(hint, tmp_path / "src") == (f"pip install -e '{tmp_path / 'src'}[keras]'  "
                                                    "(CPU build: pip install torch==2.13.0)")
    assert install_hint("pip install wtnas-fancy", tmp_path) == "pip install wtnas-fancy"
    checkout = source_checkout()   # the tests run from this repository
    assert checkout is not None and (checkout / "wtnas_cli").is_dir()
    comp = load_plugins(plugins=[_UnavailableExtra]).registry.get("backend", "fancier")
    assert comp.hint == f"pip install -e '{checkout}[fancier]'  (or conda)"
    with pytest.raises(PluginError, match=re.escape(f"install it with: pip install -e '{checkout}[fancier]'")):
        comp.create()

class _Broken:
    @staticmethod
    @hookimpl
    def wtnas_register_problems(register):
        raise RuntimeError("kaputt")


class _BadHook:
    @staticmethod
    @hookimpl
    def wtnas_no_such_hook():
        pass


def test_broken_plugins_are_reported_and_skipped():
    plugins = load_plugins(plugins=[_Broken, _BadHook])
    reasons = dict(plugins.broken)
    assert "kaputt" in reasons["_Broken"]
    assert "_BadHook" in reasons
    assert "digits" in plugins.registry.names("problem")


class _Everything:
    """Implements every registration hook; records that each was called."""

    called = set()

    @classmethod
    def _reg(cls, kind, register):
        cls.called.add(kind)
        register(f"test-{kind}", lambda *a, **k: kind)

    @staticmethod
    @hookimpl
    def wtnas_register_backends(register):
        _Everything._reg("backend", register)

    @staticmethod
    @hookimpl
    def wtnas_register_strategies(register):
        _Everything._reg("strategy", register)

    @staticmethod
    @hookimpl
    def wtnas_register_selectors(register):
        _Everything._reg("selector", register)

    @staticmethod
    @hookimpl
    def wtnas_register_matchers(register):
        _Everything._reg("matcher", register)

    @staticmethod
    @hookimpl
    def wtnas_register_executors(register):
        _Everything._reg("executor", register)

    @staticmethod
    @hookimpl
    def wtnas_register_problems(register):
        _Everything._reg("problem", register)

    @staticmethod
    @hookimpl
    def wtnas_register_export_formats(register):
        _Everything._reg("format", register)


def test_every_registration_hook_is_called():
    plugins = load_plugins(plugins=[_Everything])
    assert _Everything.called == set(KINDS)
    for kind in KINDS:
        comp = plugins.registry.get(kind, f"test-{kind}")
        assert comp.plugin == "_Everything" and comp.create() == kind


def _make_dist(tmp_path, module_source, name="wtnas_hello"):
    """A real installed distribution: module + .dist-info with an entry point in group `wtnas`."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = tmp_path / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[wtnas]\nhello = {name}\n")
    return tmp_path


HELLO = """
    import typer
    from wtnas_cli.plugins.hookspecs import hookimpl

    @hookimpl
    def wtnas_register_matchers(register):
        register("first-only", lambda: (lambda p, r: [(0, 0)] if p and r and p[0] == r[0] else []),
                 description="a third-party matcher")

    @hookimpl
    def wtnas_add_commands(app):
        @app.command("hello")
        def hello(name: str = "world"):
            print(f"hello {name} from a plugin")
"""


def test_third_party_entry_point_is_discovered(tmp_path):
    site = _make_dist(tmp_path, HELLO)
    env = {"PYTHONPATH": str(site)}
    out = run_cli("plugins", env=env)
    assert out.returncode == 0, out.stderr
    assert "first-only" in out.stdout and "hello" in out.stdout
    out = run_cli("hello", "--name", "nas", env=env)
    assert out.returncode == 0 and "hello nas from a plugin" in out.stdout


def test_disable_and_allow_list(tmp_path):
    site = _make_dist(tmp_path, HELLO)
    out = run_cli("plugins", env={"PYTHONPATH": str(site), "WTNAS_DISABLE_PLUGINS": "hello"})
    assert "first-only" not in out.stdout
    out = run_cli("plugins", env={"PYTHONPATH": str(site), "WTNAS_LOAD_PLUGINS": "hello,matchers"})
    assert "first-only" in out.stdout and "evolution" not in out.stdout


def test_broken_third_party_plugin_does_not_break_cli(tmp_path):
    site = _make_dist(tmp_path, "raise ImportError('needs libfoo')\n")
    out = run_cli("plugins", env={"PYTHONPATH": str(site)})
    assert out.returncode == 0
    assert "broken plugin" in out.stdout and "needs libfoo" in out.stdout


def test_lifecycle_hooks_are_called(tmp_path):
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.search.scheduler import run_search

    seen = {"evaluated": [], "finished": []}

    class Tracker:
        @staticmethod
        @hookimpl
        def wtnas_candidate_evaluated(run_dir, record):
            seen["evaluated"].append(record["id"])

        @staticmethod
        @hookimpl
        def wtnas_run_finished(run_dir, summary):
            seen["finished"].append(summary)

    cfg = RunConfig(max_evals=3, population=2, sample=1, workers=1, run_dir=str(tmp_path / "run"))
    run_search(cfg, plugins=load_plugins(plugins=[Tracker]))
    assert sorted(seen["evaluated"]) == [0, 1, 2]
    assert len(seen["finished"]) == 1 and seen["finished"][0]["ok"] == 3


def test_a_failing_tracker_never_ends_the_search(tmp_path):
    """A notification hook that raises is reported once and skipped; the other plugins still
    get every call and the search finishes."""
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.search.scheduler import run_search

    seen, warnings = [], []

    class Broken:
        @staticmethod
        @hookimpl
        def wtnas_candidate_evaluated(run_dir, record):
            raise RuntimeError("tracker server unreachable")

        @staticmethod
        @hookimpl
        def wtnas_run_finished(run_dir, summary):
            raise ValueError("boom")

    class Working:
        @staticmethod
        @hookimpl
        def wtnas_candidate_evaluated(run_dir, record):
            seen.append(record["id"])

    class Observer:
        def __getattr__(self, name):
            return lambda *a, **k: warnings.append(a[0]) if name == "warning" else None

    cfg = RunConfig(max_evals=4, population=2, sample=1, workers=1, run_dir=str(tmp_path / "run"))
    summary = run_search(cfg, plugins=load_plugins(plugins=[Broken, Working]), observer=Observer())
    assert summary.ok == 4 and sorted(seen) == [0, 1, 2, 3]
    failures = [w for w in warnings if "failed" in w]
    assert len(failures) == 2 and "tracker server unreachable" in failures[0] and "goes on" in failures[0]


def test_testing_helpers_check_builtins(plugins, tmp_path):
    from wtnas_cli.testing import check_backend, check_matcher, tiny_search

    for name in ("lp", "lcs", "none"):
        check_matcher(plugins.registry.create("matcher", name))
    backend = plugins.registry.create("backend", "torch")
    backend.configure(threads=1)
    check_backend(backend, plugins.registry.create("problem", "digits"), samples=5)
    summary = tiny_search(tmp_path / "r", plugins=plugins)
    assert summary.ok == 6


def test_check_matcher_catches_a_wrong_matcher():
    from wtnas_cli.testing import check_matcher

    with pytest.raises(AssertionError, match="paired provider tensor 0 .* pairs need equal shapes"):
        check_matcher(lambda a, b: [(0, 0)] if a and b else [])


def test_check_matcher_accepts_generators_and_spec_matchers():
    from wtnas_cli.weights.matching import match_lcs, match_lcs_slice, takes_specs
    from wtnas_cli.testing import check_matcher

    check_matcher(lambda a, b: (pair for pair in match_lcs(a, b)))  # any iterable: the evaluator lists it once
    check_matcher(match_lcs_slice)
    with pytest.raises(AssertionError, match="pairs need the same rank"):
        check_matcher(takes_specs(lambda a, b: [(0, 0)] if a and b else [], partial=True))


def _hook_doc_generator():
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("make_plugin_hooks", ROOT / "docs" / "make_plugin_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hook_reference_is_exactly_what_the_specs_generate():
    """docs/plugin-hooks.md cannot drift: it must equal a fresh render of wtnas_cli/plugins/hookspecs.py."""
    from conftest import ROOT

    committed = (ROOT / "docs" / "plugin-hooks.md").read_text()
    assert committed == _hook_doc_generator().render(), \
        "docs/plugin-hooks.md is stale: run python docs/make_plugin_hooks.py"


def test_every_hook_named_in_the_docs_has_its_spec_signature():
    """Prose docs (README, docs/*.md, the example plugins' READMEs) that write a hook call
    `wtnas_x(a, b)` must use the spec's parameter names, and name no hook that does not exist."""
    import inspect
    import re

    from conftest import ROOT

    specs = _hook_doc_generator().hook_specs()
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "plugins").glob("*/README.md"))]
    seen: set[str] = set()
    for path in files:
        for name, args in re.findall(r"\b(wtnas_[a-z_]+)\(([^()]*)\)", path.read_text()):
            hook_like = ("wtnas_register_", "wtnas_add_", "wtnas_run_", "wtnas_candidate_", "wtnas_topk_")
            if name not in specs and not name.startswith(hook_like):
                continue
            assert name in specs, f"{path.name} names hook {name}, which has no spec in wtnas_cli/plugins/hookspecs.py"
            expected = list(inspect.signature(specs[name]).parameters)
            while "[" in args:   # drop annotations' brackets: dict[str, Any] holds a comma
                args = re.sub(r"\[[^\[\]]*\]", "", args)
            written = [a.split(":")[0].split("=")[0].strip() for a in args.split(",") if a.strip()]
            assert written == expected, f"{path.name}: {name}({', '.join(written)}) but the spec is {name}({', '.join(expected)})"
            seen.add(name)
    assert seen == set(specs)   # plugin-hooks.md is among the files: every spec was checked at least there


def test_example_plugin_package_installs_and_runs(tmp_path):
    """A real third-party package: built and installed by pip, discovered through its entry point."""
    import subprocess

    from conftest import ROOT

    site = tmp_path / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--target", str(site), str(ROOT / "plugins" / "wtnas-example")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    import os

    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}   # this wtnas too
    listing = run_cli("plugins", env=env)
    assert "spirals" in listing.stdout and "best-nearby" in listing.stdout and "example" in listing.stdout
    assert "max_distance" in run_cli("plugins", "--options", env=env).stdout
    run = run_cli("run", "--problem", "spirals", "--strategy", "random", "--selector", "best-nearby",
                  "--max-evals", "10", "--workers", "2", "--run-dir", tmp_path / "r", env=env)
    assert run.returncode == 0, run.stderr
    assert "10 of 10 candidates done (0 failed)" in run.stdout
    import sqlite3

    con = sqlite3.connect(tmp_path / "r" / "wtnas.sqlite")
    distances = [r[0] for r in con.execute("SELECT distance FROM candidates WHERE provider_id IS NOT NULL")]
    con.close()
    assert distances and all(d <= 2 for d in distances)


def test_contracts_module_is_one_light_import():
    """Plugin authors import every contract from one module, which pulls no framework in."""
    import subprocess

    code = ("import sys, wtnas_cli.contracts as c; missing = [n for n in c.__all__ if not hasattr(c, n)]; "
            "heavy = [m for m in ('torch', 'tensorflow', 'keras', 'ray', 'mpi4py', 'h5py') if m in sys.modules]; "
            "print(missing, heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[] []", out.stdout + out.stderr


def test_a_plugin_with_hooks_only_is_listed_with_its_hooks():
    """A tracker registers no component; `wtnas plugins` still shows it is loaded, and which hooks."""
    import types

    from wtnas_cli.cli.info import hook_only_plugins
    from wtnas_cli.plugins.hookspecs import hookimpl

    tracker = types.ModuleType("mytracker")

    @hookimpl
    def wtnas_run_finished(run_dir, summary):
        pass

    tracker.wtnas_run_finished = wtnas_run_finished  # type: ignore[attr-defined]
    from wtnas_cli.testing import fresh_plugins

    listed = dict(hook_only_plugins(fresh_plugins(tracker)))
    assert listed["mytracker"] == ["wtnas_run_finished"]
    assert "matchers" not in listed   # built-ins register components
