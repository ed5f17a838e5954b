"""`wtnas export`: real runs exported to .pt2, .onnx and .keras, each loaded in a fresh Python that
cannot import wtnas, predicting what wtnas predicts on the validation data."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402
from wtnas_cli.cli import main  # noqa: E402
from wtnas_cli.results.candidate import load_candidate, run_config, run_problem  # noqa: E402
from wtnas_cli.run.config import RunConfig  # noqa: E402
from wtnas_cli.errors import WtnasError  # noqa: E402
from wtnas_cli.results.exporting import choose, export_model  # noqa: E402
from wtnas_cli.plugins.hookspecs import hookimpl  # noqa: E402
from wtnas_cli.plugins.manager import load_plugins  # noqa: E402
from wtnas_cli.model.problem import as_inputs  # noqa: E402
from wtnas_cli.search.scheduler import run_search  # noqa: E402
from wtnas_cli.run.store import RunStore  # noqa: E402
from wtnas_cli.results.topk import TopKConfig, run_topk  # noqa: E402

SUFFIX = {"torch": ".pt2", "onnx": ".onnx", "keras": ".keras"}
NEEDS = {"torch": ("torch",), "onnx": ("torch", "onnx", "onnxscript", "onnxruntime"), "keras": ("keras", "torch")}

# Runs in `python -I` (no PYTHONPATH, no user site, no script dir) with every `wtnas*` module
# blocked, since wtnas is installed (editable) in this environment: the file alone must do.
# TensorFlow is blocked too: Keras' loader would import it just because it is installed (~8 s).
LOADER = r'''
import importlib.abc, importlib.util, sys
from pathlib import Path

class Blocker(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("wtnas"):
            raise ModuleNotFoundError(f"{name} is blocked: the exported file must load without wtnas")
        if name.split(".")[0] == "tensorflow":   # found (origin None) but fails to import
            return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        raise ModuleNotFoundError(f"{spec.name} is blocked")

    def exec_module(self, module):
        pass

sys.meta_path.insert(0, Blocker())
try:
    import wtnas_cli
    raise SystemExit("wtnas_cli is importable")
except ModuleNotFoundError:
    pass
import numpy as np

fmt, path, out, *inputs = sys.argv[1:]
xs = [np.load(p) for p in inputs]
if fmt == "torch":
    import torch
    with torch.no_grad():
        pred = torch.export.load(path).module()(*map(torch.from_numpy, xs)).numpy()
elif fmt == "onnx":
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    pred = session.run(None, {Path(p).stem: x for p, x in zip(inputs, xs)})[0]   # inputs by name
else:
    import keras
    pred = keras.saving.load_model(path).predict(xs if len(xs) > 1 else xs[0], verbose=0)
assert not [m for m in sys.modules if m.startswith(("wtnas", "tensorflow"))]
np.save(out, np.asarray(pred))
'''


def _need(fmt):
    """Skip without the format's modules; find_spec imports nothing (importing keras here would fix
    this pytest process's Keras engine to TensorFlow for every later test)."""
    missing = [m for m in NEEDS[fmt] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"--format {fmt} needs {', '.join(missing)}")


def standalone_predict(fmt, path, inputs, names, tmp_path):
    """Predictions of an exported file, from a fresh interpreter that cannot import wtnas."""
    files = []
    for name, x in zip(names, inputs):
        files.append(tmp_path / f"{name}.npy")
        np.save(files[-1], np.ascontiguousarray(x, np.float32))
    out = tmp_path / "pred.npy"
    proc = subprocess.run([sys.executable, "-I", "-c", LOADER, fmt, str(path), str(out), *map(str, files)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": "1",
                               "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


def wtnas_predict(run_dir, checkpoint, arch_seq):
    """wtnas's own predictions (the run's backend, the function `evaluate` scores) on the
    validation data, and that data."""
    plugins = load_plugins()
    cfg = run_config(run_dir)
    problem = run_problem(cfg, plugins)
    backend = plugins.registry.create("backend", cfg.backend)
    backend.configure(threads=1)
    model = load_candidate(problem, backend, arch_seq, checkpoint)
    x = as_inputs(problem.data().x_val)
    return model.predict(x if len(x) > 1 else x[0]), x, [i.name for i in problem.space.inputs]


def check_export(run_dir, out, fmt, tmp_path, checkpoint, arch_seq):
    expected, x, names = wtnas_predict(run_dir, checkpoint, arch_seq)
    got = standalone_predict(fmt, out, x, names, tmp_path)
    assert got.shape == expected.shape
    diff = float(np.abs(got.astype(np.float64) - expected).max())
    print(f"{fmt}: max abs diff {diff:.3g} on {len(expected)} validation samples")
    assert diff < 1e-5
    return diff


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 4-candidate digits search, one worker, fixed seed (nothing depends on scheduling)."""
    cfg = RunConfig(max_evals=4, population=2, sample=1, workers=1, threads_per_worker=1, seed=3, controls=0.0,
                    run_dir=str(tmp_path_factory.mktemp("export") / "run"))
    run_search(cfg)
    return Path(cfg.run_dir)


@pytest.fixture(scope="module")
def topk_run(run, tmp_path_factory):
    """The same run after `wtnas topk --k 1`."""
    copy = tmp_path_factory.mktemp("export-topk") / "run"
    shutil.copytree(run, copy)
    run_topk(copy, TopKConfig(k=1, max_epochs=2, workers=1, verify="off", min_distance=1))
    return copy


def _rows(run_dir):
    store = RunStore(run_dir / "wtnas.sqlite")
    try:
        return store.candidates(), store.trained()
    finally:
        store.close()


def _one_line_error(out, *expected):
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1 and len(lines) == 1, out.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("fmt", ["torch", "onnx", pytest.param("keras", marks=pytest.mark.slow)])
def test_export_loads_without_wtnas_and_predicts_what_wtnas_predicts(run, tmp_path, fmt):
    _need(fmt)
    candidates, _ = _rows(run)
    best = min((c for c in candidates if c["status"] == "ok"), key=lambda c: (-c["score"], c["id"]))
    out = tmp_path / f"model{SUFFIX[fmt]}"
    res = run_cli("export", run, "--format", fmt, "-o", out)
    assert res.returncode == 0, res.stderr
    assert f"candidate {best['id']} (search score {best['score']:.4f}" in res.stdout
    assert "image (N, 8, 8, 1)" in res.stdout and "channels-last" in res.stdout
    if fmt == "keras":   # loading it outside wtnas needs a Keras backend: the line says how (the loader sets it)
        assert "KERAS_BACKEND=torch" in res.stdout
    assert out.is_file() and [p.name for p in tmp_path.iterdir()] == [out.name]   # no temporary left
    check_export(run, out, fmt, tmp_path, best["checkpoint"], best["arch_seq"])


def test_default_is_topk_best_and_from_selects_the_source(topk_run, tmp_path):
    candidates, trained = _rows(topk_run)
    top = [t for t in trained if t["status"] == "ok"]
    assert len(top) == 1
    choice = choose(topk_run)   # the default: the fully trained model
    assert (choice.source, choice.candidate_id, choice.score) == ("topk", top[0]["candidate_id"], top[0]["objective_final"])
    assert choice.checkpoint.parent.name == "topk"
    assert choose(topk_run, source="topk").candidate_id == choice.candidate_id
    search = choose(topk_run, source="search")
    best = min((c for c in candidates if c["status"] == "ok"), key=lambda c: (-c["score"], c["id"]))
    assert (search.source, search.candidate_id, search.score) == ("search", best["id"], best["score"])
    assert choose(topk_run, candidate_id=choice.candidate_id).source == "topk"   # --id: topk's weights if it has them
    other = next(c["id"] for c in candidates if c["status"] == "ok" and c["id"] != choice.candidate_id)
    assert choose(topk_run, candidate_id=other).source == "search"
    with pytest.raises(WtnasError, match=f"--id {other} --from topk: `wtnas topk` did not train candidate {other}"):
        choose(topk_run, candidate_id=other, source="topk")

    out = tmp_path / "best.pt2"
    res = run_cli("export", topk_run, "-o", out)   # format from the file name
    assert res.returncode == 0, res.stderr
    assert f"candidate {choice.candidate_id} (fully trained by topk, warm start: score {choice.score:.4f}" in res.stdout
    assert choice.checkpoint.name in res.stdout
    check_export(topk_run, out, "torch", tmp_path, choice.checkpoint, choice.arch_seq)


def test_from_topk_without_topk_and_bad_sources(run):
    with pytest.raises(WtnasError, match="--from topk: .* has no model trained by `wtnas topk`; run `wtnas topk"):
        choose(run, source="topk")
    with pytest.raises(WtnasError, match="--from 'best': choose one of search, topk"):
        choose(run, source="best")
    with pytest.raises(WtnasError, match="--id 99: .* has no candidate 99 \\(ids 0-3\\)"):
        choose(run, candidate_id=99)


def test_a_candidate_without_checkpoint_is_refused_and_skipped(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    best = choose(copy)
    store = RunStore(copy / "wtnas.sqlite")
    try:
        store.drop_checkpoint(best.candidate_id, "test")   # what --keep needed records when it deletes one
    finally:
        store.close()
    with pytest.raises(WtnasError, match=f"--id {best.candidate_id}: candidate {best.candidate_id} has no checkpoint "
                                         "left \\(deleted by --keep needed"):
        choose(copy, candidate_id=best.candidate_id)
    assert choose(copy).candidate_id != best.candidate_id   # the best that exists


def test_bad_inputs_are_one_line_errors(run, tmp_path, capsys):
    _one_line_error(run_cli("export", run, "--id", "99", "-o", tmp_path / "m.pt2"), "--id 99", "no candidate 99")

    def error(*args):   # the same entry point in this process (a subprocess each costs ~4 s)
        with pytest.raises(SystemExit) as exit_:
            main(["export", *map(str, args)])
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert exit_.value.code == 1 and len(lines) == 1, lines
        return lines[0]

    assert "does not exist; create it first" in error(run, "-o", tmp_path / "missing" / "m.pt2")
    message = error(run, "--format", "tflite", "-o", tmp_path / "m.tflite")
    assert "--format: unknown format 'tflite'; valid formats: keras, onnx, torch" in message
    assert "--format torch writes .pt2 files; name it m.pt2" in error(run, "--format", "torch", "-o", tmp_path / "m.onnx")
    assert "is a directory" in error(run, "--format", "torch", "-o", tmp_path)
    assert "give --format" in error(run, "-o", tmp_path / "m.bin")
    assert "holds no wtnas run" in error(tmp_path, "-o", tmp_path / "m.pt2")
    assert "--best and --id contradict" in error(run, "--best", "--id", "1", "-o", tmp_path / "m.pt2")
    assert "--from 'all': choose one of search, topk" in error(run, "--from", "all", "-o", tmp_path / "m.pt2")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt, missing, extra", [("onnx", "onnxruntime", "torch,export"), ("keras", "keras", "keras")])
def test_missing_extra_gives_the_install_hint(run, tmp_path, fmt, missing, extra):
    code = (f"import sys; sys.modules[{missing!r}] = None\nfrom wtnas_cli.cli import main\n"
            f"main(['export', {str(run)!r}, '--format', {fmt!r}, '-o', {str(tmp_path / ('m' + SUFFIX[fmt]))!r}])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    from wtnas_cli.util.install import source_checkout   # the tests run from a checkout: it names it

    _one_line_error(out, f"format {fmt!r} needs {missing}", f"pip install -e '{source_checkout()}[{extra}]'")


def test_export_help_imports_no_framework():
    code = ("import sys\nfrom wtnas_cli.cli import main\ntry:\n    main(['export', '--help'])\nexcept SystemExit:\n"
            "    pass\nprint(sorted(m for m in ('torch', 'keras', 'onnx', 'onnxruntime', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().endswith("[]"), out.stdout + out.stderr


class _Broken:
    """A format plugin whose file is written partly, or predicts other numbers than wtnas."""

    def __init__(self, mode):
        self.mode, self.backend, self.suffix, self.layout = mode, "torch", ".bin", "test"

    def export(self, model, path, inputs):
        with open(path, "wb") as f:
            f.write(b"half a model")
        if self.mode == "crash":
            raise OSError("disk went away")

    def predict(self, path, inputs):
        return np.zeros((len(inputs[0]), 10), np.float32)


class _BrokenFormats:
    @staticmethod
    @hookimpl
    def wtnas_register_export_formats(register):
        register("crash", lambda: _Broken("crash"))
        register("wrong", lambda: _Broken("wrong"))


@pytest.mark.parametrize("fmt, error", [("crash", OSError), ("wrong", WtnasError)])
def test_a_failed_or_wrong_export_leaves_no_file(run, tmp_path, fmt, error):
    plugins = load_plugins(plugins=[_BrokenFormats])
    (tmp_path / "m.bin").write_bytes(b"the previous model")
    with pytest.raises(error, match="disk went away" if fmt == "crash" else "differ from wtnas's by"):
        export_model(run, fmt, tmp_path / "m.bin", plugins=plugins)
    assert [p.name for p in tmp_path.iterdir()] == ["m.bin"] and (tmp_path / "m.bin").read_bytes() == b"the previous model"


@pytest.fixture(scope="module")
def uno_run(tmp_path_factory):
    """Multi-input regression (4 input arrays, residual add-by-padding cells) on synthetic data."""
    cfg = RunConfig(problem="uno", synthetic=True, samples=200, max_evals=2, population=2, sample=1, workers=1,
                    threads_per_worker=1, seed=0, controls=0.0, run_dir=str(tmp_path_factory.mktemp("uno") / "run"))
    run_search(cfg)
    return Path(cfg.run_dir)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torch", "onnx", "keras"])
def test_multi_input_uno_exports(uno_run, tmp_path, fmt):
    _need(fmt)
    out = tmp_path / f"uno{SUFFIX[fmt]}"
    res = run_cli("export", uno_run, "--format", fmt, "-o", out)
    assert res.returncode == 0, res.stderr
    assert "dose (N, 1), cell_rnaseq (N, 942), drug_descriptors (N, 5270), drug_fingerprints (N, 2048)" in res.stdout
    choice = choose(uno_run)
    check_export(uno_run, out, fmt, tmp_path, choice.checkpoint, choice.arch_seq)


@pytest.fixture(scope="module")
def norm_run(tmp_path_factory):
    """A run on a raw CSV (breast cancer, values ~0.001 to ~4,000) whose space file normalizes
    (data.normalize = "standard"): 3 candidates, one worker, fixed seed, torch backend."""
    from test_normalize import breast_cancer

    base = tmp_path_factory.mktemp("export-norm")
    space, data = breast_cancer(base, "standard")
    cfg = RunConfig(problem="file", space=str(space), data=str(data), backend="torch", max_evals=3, population=2,
                    sample=1, workers=1, threads_per_worker=1, seed=0, controls=0.0, run_dir=str(base / "run"))
    run_search(cfg)
    return Path(cfg.run_dir)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torch", "onnx", "keras"])
def test_export_of_a_normalized_run_takes_raw_inputs(norm_run, tmp_path, fmt):
    _need(fmt)
    from wtnas_cli.model.normalize import load_normalization

    stored = load_normalization(norm_run)
    assert stored.method == "standard"
    out = tmp_path / f"bc{SUFFIX[fmt]}"
    res = run_cli("export", norm_run, "--format", fmt, "-o", out)
    assert res.returncode == 0, res.stderr
    assert "applies the run's standard normalization" in res.stdout and "raw inputs" in res.stdout
    choice = choose(norm_run)
    expected, seen, names = wtnas_predict(norm_run, choice.checkpoint, choice.arch_seq)   # on normalized data
    raw = as_inputs(run_problem(run_config(norm_run)).raw_data().x_val)   # the CSV's own values
    assert float(np.abs(raw[0]).max()) > 1000                 # raw indeed, not normalized
    np.testing.assert_array_equal(stored.apply(raw), seen)     # the stored statistics are what wtnas applied
    got = standalone_predict(fmt, out, raw, names, tmp_path)
    assert got.shape == expected.shape
    diff = float(np.abs(got.astype(np.float64) - expected).max())
    print(f"{fmt} (normalized run, raw inputs): max abs diff {diff:.3g} on {len(expected)} validation samples")
    assert diff < 1e-5
    # fed normalized inputs instead, the file would be wrong: the statistics are inside it
    assert float(np.abs(standalone_predict(fmt, out, seen, names, tmp_path) - expected).max()) > 1e-3


@pytest.mark.slow
def test_an_exporter_that_cannot_normalize_refuses_a_normalized_run(norm_run, tmp_path):
    plugins = load_plugins(plugins=[_BrokenFormats])   # its export() takes no `normalization`
    with pytest.raises(WtnasError, match="normalizes its inputs .* cannot write that into the file; nothing written"):
        export_model(norm_run, "wrong", tmp_path / "m.bin", plugins=plugins)
    assert list(tmp_path.iterdir()) == []
