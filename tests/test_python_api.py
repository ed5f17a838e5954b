"""wtnas_cli.api: docs/python-api.md's examples run as written, and the API's own promises
(native models predict what wtnas scores, one-line errors, no framework at import).

Keras is only imported in subprocesses: importing it here would fix its engine for later test
files (see tests/test_export.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wtnas_cli import api
from wtnas_cli.results.candidate import load_candidate, run_config, run_problem
from wtnas_cli.plugins.manager import load_plugins
from wtnas_cli.model.problem import as_inputs

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "python-api.md"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins"),
                                                    os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}


def _python(code: str, cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    # `-c`, not a script file: spawn-started workers re-import a script file's __main__
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 4-candidate digits search, one worker, fixed seed (nothing depends on scheduling)."""
    run_dir = tmp_path_factory.mktemp("pyapi") / "run"
    api.run("digits", run_dir=run_dir, max_evals=4, population=2, sample=1, workers=1, threads_per_worker=1,
            seed=3, controls=0.0)
    return run_dir


@pytest.mark.slow
def test_the_documented_examples_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 6
    proc = _python("\n".join(blocks), tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "must be an integer, got '8'" in proc.stdout
    assert (tmp_path / "toy.toml").is_file() and not (tmp_path / "bad.toml").exists()
    assert (tmp_path / "runs" / "toy" / "topk").is_dir()


def test_import_loads_no_framework():
    code = ("import sys\nimport wtnas_cli.api\n"
            "print(sorted(m for m in ('torch', 'keras', 'h5py', 'tensorflow', 'pandas') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_stable_names_exist():
    for name in api.__all__:
        assert hasattr(api, name), name


def test_space_file_round_trips_toml_and_yaml(tmp_path):
    from wtnas_cli.model.spacefile import parse_space, read_document

    spec = {"name": "t", "description": 'quotes " and \\ back', "batch_size": 8, "min_delta": 0.5,
            "data": {"label": "y", "normalize": "standard"},
            "inputs": [{"name": "x", "shape": [3]}],
            "nodes": [{"name": "h", "inputs": ["x"], "choices": [{"op": "Dense", "units": 4, "activation": "relu"},
                                                                 {"op": "Identity"}]},
                      {"name": "out", "op": {"op": "Dense", "units": 1, "activation": None}}],
            "output": None}
    for name in ("s.toml", "s.yaml"):
        path = api.space_file(tmp_path / name, spec)
        space, settings = parse_space(path)
        assert len(space.variable_nodes) == 1 and settings["batch_size"] == 8
        doc = read_document(path)
        assert doc["description"] == spec["description"] and doc["nodes"][0] == spec["nodes"][0]
    assert api.space_file(tmp_path / "other.toml", tmp_path / "s.toml") == tmp_path / "s.toml"


def test_space_file_errors_are_one_line_and_write_nothing(tmp_path):
    bad = {"inputs": [{"name": "x", "shape": [3]}], "nodes": [{"name": "h", "choices": [{"op": "Dnse"}]}]}
    with pytest.raises(api.WtnasError) as info:
        api.space_file(tmp_path / "bad.toml", bad)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'bad.toml'}: nodes[0].choices[0]")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(api.WtnasError, match="name the file .toml, .yaml or .yml"):
        api.space_file(tmp_path / "s.json", bad)
    with pytest.raises(api.WtnasError, match=r"unknown option 'max_eval' \(did you mean 'max_evals'\?\)"):
        api.run("digits", max_eval=3)


def test_results_and_lineage(run):
    rows = api.results(run)
    assert [r["id"] for r in rows] == [0, 1, 2, 3] and all(isinstance(r["arch_seq"], list) for r in rows)
    chain = api.lineage(run)
    assert chain[-1]["id"] == api.best(run).candidate_id and chain[0]["received_from"] is None


@pytest.mark.slow
def test_load_model_torch_predicts_what_wtnas_scores(run):
    import torch

    choice = api.best(run)
    module = api.load_model(run)
    assert isinstance(module, torch.nn.Module) and not module.training
    plugins = load_plugins()
    problem = run_problem(run_config(run), plugins)
    backend = plugins.registry.create("backend", "torch")
    backend.configure(threads=1)
    model = load_candidate(problem, backend, choice.arch_seq, choice.checkpoint)
    x = as_inputs(problem.data().x_val)
    expected = model.predict(x[0])
    with torch.no_grad():
        got = module(*(torch.from_numpy(np.asarray(a, np.float32)) for a in x)).numpy()
    assert got.shape == expected.shape
    assert float(np.abs(got.astype(np.float64) - expected).max()) < 1e-5
    # and the accuracy the run stored for this candidate
    y = np.asarray(problem.data().y_val).reshape(-1)
    score = next(r["score"] for r in api.results(run) if r["id"] == choice.candidate_id)
    assert abs(float((got.argmax(1) == y).mean()) - score) < 1e-9


def test_load_model_bad_framework_is_one_line(run):
    with pytest.raises(api.WtnasError) as info:
        api.load_model(run, framework="tensorflow")
    assert "\n" not in str(info.value) and "framework 'tensorflow': choose one of" in str(info.value)
    with pytest.raises(api.WtnasError, match="has no candidate 99"):
        api.load_model(run, candidate_id=99)


def test_results_frame_without_pandas_is_one_line(run, tmp_path):
    code = (f"import sys\nsys.modules['pandas'] = None\nfrom wtnas_cli import api\n"
            f"try:\n    api.results_frame({str(run)!r})\nexcept api.WtnasError as exc:\n    print('ERR', exc)\n")
    proc = _python(code, tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith("ERR results_frame() needs pandas") and "pip install pandas" in line and "\n" not in line


def test_results_frame_with_pandas(run):
    pd = pytest.importorskip("pandas")
    frame = api.results_frame(run)
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == [0, 1, 2, 3]


@pytest.mark.slow
def test_load_model_keras_in_a_subprocess(run, tmp_path):
    import importlib.util

    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras not installed")
    code = f"""
import sys
import numpy as np
from wtnas_cli import api   # keras is imported by the backend, on the engine it chooses
from wtnas_cli.results.candidate import run_config, run_problem
from wtnas_cli.model.problem import as_inputs
run = {str(run)!r}
torch_module = api.load_model(run)
model = api.load_model(run, framework="keras")
assert isinstance(model, sys.modules["keras"].Model), type(model)
x = as_inputs(run_problem(run_config(run)).data().x_val)[0].astype(np.float32)
import torch
with torch.no_grad():
    expected = torch_module(torch.from_numpy(x)).numpy()
got = np.asarray(model.predict(x, verbose=0))
print("DIFF", float(np.abs(got.astype(np.float64) - expected).max()))
"""
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    diff = float(proc.stdout.split("DIFF")[-1])
    assert diff < 1e-5
