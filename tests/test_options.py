"""Component-owned options: declared at registration, set with `wtnas run -o`, `[options.X]` in a
config file or `api.run(options=...)`, checked against the run's components (one-line errors),
kept in run.toml so `--resume` restores them, and listed by `wtnas plugins --options`."""

import sqlite3
import textwrap

import pytest

from wtnas_cli.run.config import RunConfig, load_config_file, resolve_config, to_toml
from wtnas_cli.run.resolver import resume_config
from wtnas_cli.errors import ConfigError, PluginError
from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.plugins.option import Option
from wtnas_cli.run.resolver import settle
from wtnas_cli.plugins.manager import load_plugins
from wtnas_cli.search.jobs import create_executor
from wtnas_cli.search.scheduler import resolve_run, run_search

from conftest import run_cli


class _Probe:
    """An executor that records what its factory received, and a selector with an option."""

    received: dict = {}

    @staticmethod
    @hookimpl
    def wtnas_register_executors(register):
        def factory(**kwargs):
            _Probe.received = kwargs
            return object()
        register("probe", factory, options=[Option("address", str, None, "scheduler address"),
                                            Option("retries", int, 3, "resubmissions", min=0)])

    @staticmethod
    @hookimpl
    def wtnas_register_matchers(register):
        register("old-style", lambda: (lambda p, r: []), options={"baseline": True})   # the old spelling of traits


@pytest.fixture
def probe():
    return load_plugins(plugins=[_Probe])


def _settled(reg, **values):
    cfg = RunConfig(**values)
    settle(cfg, reg)
    return cfg


def test_an_executor_option_reaches_its_factory_with_the_core_settings(probe):
    cfg = _settled(probe.registry, executor="probe", workers=2, options={"probe.address": "head:8786"})
    create_executor(cfg, probe)
    assert _Probe.received["address"] == "head:8786" and _Probe.received["retries"] == 3   # default filled in
    assert _Probe.received["workers"] == 2 and "ray_address" not in _Probe.received
    assert cfg.options == {"executor.probe": {"address": "head:8786", "retries": 3},
                           "strategy.evolution": {"population": 20, "sample": 10, "islands": 1, "main_share": 0.0},
                           "problem.digits": {"test_split": True}}


def test_an_options_dict_is_still_read_as_traits(probe):
    comp = probe.registry.get("matcher", "old-style")
    assert comp.traits == {"baseline": True} and comp.options == ()


@pytest.mark.parametrize("options, message", [
    ([Option("n", int), Option("n", int)], "option 'n' is declared twice"),
    ([Option("n", list)], "use int, float, str or bool"),
    ([Option("n", int, "ten")], "default must be an integer, got 'ten'"),
    ([Option("not a name", int)], "not a Python identifier"),
    ([("n", int)], "must be Option(name, type, default, help)"),
])
def test_declarations_are_checked_at_registration(options, message):
    class _Bad:
        @staticmethod
        @hookimpl
        def wtnas_register_strategies(register):
            register("bad", lambda *a, **k: None, options=options)

    with pytest.raises(PluginError) as err:
        load_plugins(plugins=[_Bad])
    assert message in str(err.value) and "'bad'" in str(err.value)


@pytest.mark.parametrize("values, message", [
    (dict(executor="probe", options={"probe.adress": "x"}),
     "option probe.adress: executor 'probe' has no option 'adress' (did you mean 'address'?); its options: "
     "address, retries"),
    (dict(executor="probe", options={"probe": {"retries": 1.5}}), "option probe.retries must be an integer, got 1.5"),
    (dict(executor="probe", options={"probe": {"retries": -1}}), "option probe.retries must be at least 0, got -1"),
    (dict(options={"probe.address": "x"}), "executor 'probe': this run does not use it (--executor local)"),
    (dict(options={"none.x": 1}), "write selector.none.OPTION"),
    (dict(options={"nosuch.x": 1}), "no component has that name"),
    (dict(options={"matcher.nosuch.x": 1}), "unknown matcher 'nosuch'"),
    (dict(strategy="random", population=5), "--population (`population` in a config file): strategy 'random' has "
                                            "no option 'population'; its options: none"),
    (dict(ray_address="head:6379"), "--ray-address (`ray_address` in a config file): executor 'local' has no option"),
    (dict(features=10), "--features (`features` in a config file): problem 'digits' has no option 'features'"),
])
def test_options_that_do_not_apply_are_refused_in_one_line(probe, values, message):
    with pytest.raises(ConfigError) as err:
        _settled(probe.registry, **values)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_aliases_and_options_are_the_same_setting(plugins):
    reg = plugins.registry
    old = _settled(reg, problem="nt3", population=4, sample=2, synthetic=True, samples=50, features=8)
    new = _settled(reg, problem="nt3", options={"evolution": {"population": 4, "sample": 2},
                                                "nt3.synthetic": True, "problem.nt3": {"samples": 50, "features": 8}})
    assert old.options == new.options
    assert new.problem_options() == {"synthetic": True, "samples": 50, "features": 8, "test_split": True}
    ray = _settled(reg, executor="ray", ray_address="head:6379", gpus_per_worker=0.5)
    assert ray.options["executor.ray"] == {"address": "head:6379", "gpus_per_worker": 0.5}


def test_command_line_values_are_parsed_to_the_declared_type_and_later_sources_win(plugins, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('population = 8\n[options.evolution]\nsample = 3\n[options.executor.ray]\naddress = "a:1"\n')
    file_values = load_config_file(config)
    from wtnas_cli.plugins.option import Text

    cfg = resolve_config(file_values, {"executor": "ray", "options": {"evolution": {"population": Text("6")}},
                                       "gpus_per_worker": 1})
    settle(cfg, plugins.registry)
    assert cfg.options == {"strategy.evolution": {"population": 6, "sample": 3, "islands": 1, "main_share": 0.0},
                           "executor.ray": {"address": "a:1", "gpus_per_worker": 1.0},
                           "problem.digits": {"test_split": True}}
    # run.toml keeps them as tables and reads them back
    assert load_config_file_text(tmp_path, to_toml(cfg.to_dict()))["options"] == cfg.options
    config.write_text('[options.evolution]\npopulation = "6"\n')   # a file's value keeps its TOML type
    with pytest.raises(ConfigError, match="option evolution.population must be an integer, got '6'"):
        settle(resolve_config(load_config_file(config)), plugins.registry)
    config.write_text('[options]\nevolution = 3\n')
    with pytest.raises(ConfigError, match="must be a table of its options"):
        load_config_file(config)


def load_config_file_text(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return load_config_file(path)


def test_resume_lets_executor_options_change_and_refuses_a_strategy_option(probe):
    reg = probe.registry
    stored = {"executor": "probe", "max_evals": 10,
              "options": {"executor.probe": {"address": "a", "retries": 3}, "strategy.evolution": {"population": 4,
                                                                                                   "sample": 2}}}
    cfg, changes = resume_config(stored, {"options": {"probe": {"address": "b"}}, "max_evals": 20}, registry=reg)
    assert changes == {} and cfg.options_of("executor", "probe") == {"address": "b", "retries": 3}
    # restored; an option the run predates (islands) takes its default and is not a change
    assert cfg.options_of("strategy", "evolution") == {"population": 4, "sample": 2, "islands": 1, "main_share": 0.0}
    with pytest.raises(ConfigError, match=r"--resume: -o evolution.population=5 \(the run has 4\)"):
        resume_config(stored, {"population": 5}, registry=reg)
    cfg, changes = resume_config(stored, {"options": {"evolution.population": 5}}, force=True, registry=reg)
    assert changes == {"evolution.population": [4, 5]}
    with pytest.raises(ConfigError, match="strategy 'random' has no option 'population'"):
        resume_config(stored, {"strategy": "random", "population": 5}, force=True, registry=reg)
    # a stored executor's options are left behind when the resumed run uses another executor
    cfg, _ = resume_config(stored, {"executor": "local"}, registry=reg)
    assert "executor.probe" not in cfg.options


def test_an_old_run_toml_with_flat_keys_still_resumes(tmp_path):
    """run.toml of an older wtnas: population/sample/gpus_per_worker/synthetic for every run."""
    run_dir = tmp_path / "run"
    run_search(RunConfig(max_evals=3, population=2, sample=1, workers=1, threads_per_worker=1, controls=0.0,
                         run_dir=str(run_dir)))
    text = (run_dir / "run.toml").read_text()
    assert "[options.strategy.evolution]\npopulation = 2\nsample = 1\n" in text
    flat = text[:text.index("\n[options")] + "population = 2\nsample = 1\ngpus_per_worker = 0.0\nsynthetic = false\n"
    (run_dir / "run.toml").write_text(flat)
    summary = run_search(resume=run_dir, overrides={"max_evals": 4})
    assert summary.done == 4
    assert "[options.strategy.evolution]\npopulation = 2\nsample = 1\n" in (run_dir / "run.toml").read_text()
    from wtnas_cli.results.candidate import run_config

    # a run.toml without the problem's test_split predates test splits: it keeps none
    assert run_config(run_dir).problem_options() == {"test_split": False}


def test_a_strategy_refusing_its_options_stops_the_run_before_it_starts(plugins, tmp_path):
    with pytest.raises(ConfigError, match=r"strategy 'evolution': sample \(9\) must be between 1 and population \(5\)"):
        resolve_run(RunConfig(population=5, sample=9), plugins)


PICKY = """
    from wtnas_cli.plugins.hookspecs import hookimpl
    from wtnas_cli.contracts import Option


    class Picky:
        '''Always picks one candidate (the `provider` option) once it has a checkpoint.'''

        def __init__(self, space, provider=0):
            self.provider, self.known = provider, set()

        def observe(self, candidate_id, arch_seq, score, has_checkpoint):
            if score is not None and has_checkpoint:
                self.known.add(candidate_id)

        def select(self, proposal):
            return self.provider if self.provider in self.known else None

        def checkpoints_needed(self):
            return {self.provider}


    @hookimpl
    def wtnas_register_selectors(register):
        register("picky", Picky, description="always one provider",
                 options=[Option("provider", int, 0, "the candidate every other one starts from", min=0)])
"""


def test_a_plugin_option_set_with_dash_o_is_used_kept_and_restored(tmp_path):
    (tmp_path / "wtnas_picky.py").write_text(textwrap.dedent(PICKY))
    info = tmp_path / "wtnas_picky-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wtnas_picky\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[wtnas]\npicky = wtnas_picky\n")
    import os

    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    listed = run_cli("plugins", "--options", env=env)
    assert listed.returncode == 0 and "picky" in listed.stdout and "the candidate every other one" in listed.stdout
    run_dir = tmp_path / "run"
    out = run_cli("run", "--selector", "picky", "-o", "picky.provider=1", "--max-evals", 4, "--population", 2,
                  "--sample", 1, "--workers", 1, "--threads-per-worker", 1, "--controls", 0, "--run-dir", run_dir,
                  env=env)
    assert out.returncode == 0, out.stderr
    assert "[options.selector.picky]\nprovider = 1\n" in (run_dir / "run.toml").read_text()
    bad = run_cli("run", "--resume", run_dir, "-o", "picky.provider=0", env=env)
    assert bad.returncode == 1 and "-o picky.provider=0 (the run has 1)" in bad.stderr
    bad = run_cli("run", "--resume", run_dir, "-o", "picky.provider=one", env=env)
    assert bad.returncode == 1 and "option picky.provider must be an integer, got 'one'" in bad.stderr
    out = run_cli("run", "--resume", run_dir, "--max-evals", 5, env=env)
    assert out.returncode == 0, out.stderr
    con = sqlite3.connect(run_dir / "wtnas.sqlite")
    providers = [r[0] for r in con.execute("SELECT provider_id FROM candidates ORDER BY id")]
    con.close()
    assert providers == [None, None, 1, 1, 1]   # the option came back with --resume


def test_plugins_options_lists_every_declared_option():
    out = run_cli("plugins", "--options")
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if "│" in line]
    assert any("evolution" in r and "population" in r and "int" in r and "20" in r for r in rows)
    assert any("ray" in r and "address" in r and "str" in r for r in rows)
    assert any("nt3" in r and "features" in r and "60483" in r for r in rows)
    plain = run_cli("plugins")
    assert plain.returncode == 0 and "┃ ok " in plain.stdout and "gpus_per_worker" not in plain.stdout


def test_plugins_lists_one_line_per_component_at_80_columns():
    """`wtnas plugins` is one line per component at 80 columns (the head of each description);
    `--long` has the full text, `wtnas plugins NAME` one component with its options."""
    from wtnas_cli.plugins.manager import default_plugins
    from wtnas_cli.plugins.registry import KINDS

    registry = default_plugins().registry
    count = sum(len(registry.all(kind)) for kind in KINDS)
    out = run_cli("plugins", env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("│")]
    assert len(rows) >= count and all(len(line) <= 80 for line in out.stdout.splitlines())
    assert any("evolution" in r and "regularized evolution" in r for r in rows)
    full = run_cli("plugins", "--long", env={"COLUMNS": "80"}).stdout
    assert "one-node" in full   # the full description, folded
    one = run_cli("plugins", "evolution")
    assert one.returncode == 0 and "strategy evolution (plugin strategies; available)" in one.stdout
    assert "-o evolution.population=INT (default 20)" in one.stdout
    missing = run_cli("plugins", "evolutoin")
    assert missing.returncode == 1 and "did you mean 'evolution'" in missing.stderr


def test_dash_o_errors_are_one_line(tmp_path):
    for args, message in [
        (("-o", "evolution.population"), "write COMPONENT.OPTION=VALUE"),
        (("-o", "ray.address=h:1"), "executor 'ray': this run does not use it (--executor local)"),
        (("--strategy", "random", "--sample", "3"), "strategy 'random' has no option 'sample'"),
    ]:
        out = run_cli("run", *args, "--run-dir", tmp_path / "r")
        assert out.returncode == 1 and message in out.stderr, out.stderr
        assert len([line for line in out.stderr.splitlines() if line.strip()]) == 1, out.stderr
        assert not (tmp_path / "r").exists()


def test_python_api_takes_options_flat_or_nested(tmp_path):
    from wtnas_cli import api

    with pytest.raises(ConfigError, match="evolution' has no option 'popsize'"):
        api.run("digits", options={"evolution.popsize": 3}, run_dir=tmp_path / "r")
    with pytest.raises(ConfigError, match="executor 'ray': this run does not use it"):
        api.run("digits", options={"executor": {"ray": {"address": "h:1"}}}, run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_selector_auto_needs_the_strategy_s_trait_not_a_name_in_core():
    """`--selector auto` takes the strategy's default_selector trait (or the old factory
    attribute); a strategy with neither gets one line asking for --selector."""
    from wtnas_cli.run.scheme import run_selector

    class _Strategies:
        @staticmethod
        @hookimpl
        def wtnas_register_strategies(register):
            class Old:
                default_selector = "nearest"
            register("plain", lambda space, seed=0: None)
            register("traited", lambda space, seed=0: None, traits={"default_selector": "parent"})
            register("old-attr", Old)

    reg = load_plugins(plugins=[_Strategies]).registry
    assert run_selector(RunConfig(strategy="traited"), reg) == "parent"
    assert run_selector(RunConfig(strategy="old-attr"), reg) == "nearest"
    assert run_selector(RunConfig(strategy="plain", matcher="none"), reg) == "none"   # the baseline selector trait
    with pytest.raises(ConfigError, match="strategy 'plain' .* names no default selector .* pass --selector"):
        run_selector(RunConfig(strategy="plain"), reg)
