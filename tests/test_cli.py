"""The command line as a user meets it: real `wtnas` processes, one-line errors, exit code 1."""

import json
import sqlite3
import subprocess
import sys

import pytest

from conftest import run_cli

HEAVY = ("torch", "tensorflow", "keras", "ray", "mpi4py", "h5py", "matplotlib", "sklearn",
         "numpy", "wtnas_builtins")   # built-in plugins add no commands: --help need not load them


def test_command_summaries_are_one_sentence_each():
    """`wtnas --help` at 80 columns: each command's first sentence, wrapped as a paragraph (not cut
    where its docstring's source lines break)."""
    out = run_cli("--help", env={"COLUMNS": "80"})
    assert out.returncode == 0
    text = " ".join(line.strip("│ ") for line in out.stdout.splitlines())
    assert "record epochs to converge, objective at early stop and after full training." in " ".join(text.split())
    assert all(len(line) <= 80 for line in out.stdout.splitlines())


def test_help_imports_no_heavy_library():
    code = ("import sys\nfrom wtnas_cli.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "LOADED []" in out.stdout, out.stdout[-500:]
    assert "run" in out.stdout and "plugins" in out.stdout


@pytest.mark.parametrize("command, panels", [
    ("run", ["Problem and data", "Search", "Transfer", "Checkpoints and retention", "Execution", "Run directory"]),
    ("topk", ["Which candidates", "Training and early stopping", "Verification", "Execution"]),
])
def test_help_groups_the_options_in_panels(command, panels):
    """`wtnas run --help` is ~40 options: grouped by what they are about, in a useful order."""
    out = run_cli(command, "--help", env={"COLUMNS": "80"})
    assert out.returncode == 0
    titles = [line.split("─ ", 1)[1].split(" ─", 1)[0] for line in out.stdout.splitlines() if line.startswith("╭─ ")]
    assert [t for t in titles if t not in ("Options", "Arguments")] == panels
    assert all(len(line) <= 80 for line in out.stdout.splitlines())
    assert "<bool>" not in out.stdout and "<list[str]>" not in out.stdout   # a flag takes no value


@pytest.mark.parametrize("command, usage", [("show", "wtnas show [OPTIONS] RUN_DIR ID"),
                                            ("report", "wtnas report [OPTIONS] RUN_DIR..."),
                                            ("topk", "wtnas topk [OPTIONS] RUN_DIR")])
def test_usage_lines_name_arguments_plainly(command, usage):
    """Required arguments read `RUN_DIR`, as in the argument list and the docs (typer braces them)."""
    out = run_cli(command, "--help", env={"COLUMNS": "80"})
    assert out.returncode == 0 and f"Usage: {usage}" in out.stdout and "{" not in out.stdout.splitlines()[1]


def _one_line_error(out, *fragments):
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    lines = [l for l in out.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("Error:")
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("option, value, valid", [
    ("--matcher", "lcx", "lcs, lcs-shape, lcs-slice, lp, lp-shape, none"),
    ("--backend", "tensorfloww", "torch"),
    ("--strategy", "bayes", "evolution, random"),
    ("--selector", "closest", "nearest, none, parent"),
    ("--problem", "imagenet", "digits"),
    ("--executor", "slurm", "local"),
])
def test_unknown_plugin_name(tmp_path, option, value, valid):
    out = run_cli("run", option, value, "--run-dir", tmp_path / "r")
    _one_line_error(out, repr(value), valid)
    assert not (tmp_path / "r").exists()


def test_malformed_arch_seq():
    _one_line_error(run_cli("spaces", "digits", "--arch-seq", "1,2,3"), "has 3 values", "11 variable nodes")
    _one_line_error(run_cli("spaces", "digits", "--arch-seq", "99,0,0,0,0,0,0,0,0,0,0"),
                    "arch_seq[0] = 99 is out of range", "12 choices")
    _one_line_error(run_cli("spaces", "digits", "--arch-seq", "1,x"), "not a list of integers")


def test_spaces_decodes_an_architecture():
    out = run_cli("spaces", "digits", "--arch-seq", "0,0,0,0,0,0,0,0,0,0,0")
    assert out.returncode == 0 and "shape sequence (6 tensors)" in out.stdout


def test_match_refuses_non_checkpoints(tmp_path):
    bad = tmp_path / "notes.h5"
    bad.write_text("not hdf5")
    _one_line_error(run_cli("match", bad, bad), "is not an HDF5 file")
    _one_line_error(run_cli("inspect", tmp_path / "missing.h5"), "no such checkpoint file")


def test_config_file_errors(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('matcher = "lcs"\nmax_evalz = 3\n')
    _one_line_error(run_cli("run", "--config", cfg), str(cfg), "unknown key 'max_evalz'", "max_evals")
    cfg.write_text('max-evals = "ten"\n')
    _one_line_error(run_cli("run", "--config", cfg), "key 'max-evals' must be an integer, got 'ten'")
    cfg.write_text('max_evals = [1\n')
    _one_line_error(run_cli("run", "--config", cfg), "not valid TOML")
    _one_line_error(run_cli("run", "--config", tmp_path / "none.toml"), "config file not found")


def test_bad_option_values(tmp_path):
    _one_line_error(run_cli("run", "--population", "5", "--sample", "9", "--run-dir", tmp_path / "r"),
                    "strategy 'evolution': sample (9) must be between 1 and population (5)", "-o evolution.")
    _one_line_error(run_cli("run", "--population", "0", "--run-dir", tmp_path / "r"),
                    "--population (`population` in a config file) must be at least 1, got 0")
    _one_line_error(run_cli("run", "--max-evals", "-5", "--run-dir", tmp_path / "r"),
                    "--max-evals must be at least 1, got -5", "`max_evals`")   # the flag, not the field
    _one_line_error(run_cli("spaces", "--arch-seq", "0,1"), "--arch-seq", "PROBLEM")   # not silently ignored


@pytest.mark.slow
def test_run_then_refuse_existing_run_dir_then_inspect_and_match(tmp_path):
    run_dir = tmp_path / "a-run-directory-whose-path-is-longer-than-a-terminal-line-of-eighty-columns" / "run"
    out = run_cli("run", "--max-evals", "8", "--population", "4", "--sample", "2", "--workers", "2",
                  "--run-dir", run_dir, env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    # through a pipe (a log, CI): sentences are not hard-wrapped, the path stays whole; tables fit 80 columns
    assert "top candidates" in out.stdout and f"Next: wtnas topk {run_dir}  (fully train" in out.stdout
    assert any(line.startswith("8 of 8 candidates done") and line.rstrip().endswith(" s")
               for line in out.stdout.splitlines())
    assert all(len(line) <= 80 for line in out.stdout.splitlines() if line[:1] in "┏┃┡│└")
    before = (run_dir / "wtnas.sqlite").read_bytes()
    n_ckpt = len(list((run_dir / "checkpoints").glob("*.h5")))
    _one_line_error(run_cli("run", "--max-evals", "3", "--run-dir", run_dir), "already holds a run",
                    "--resume", "--overwrite")
    assert (run_dir / "wtnas.sqlite").read_bytes() == before
    assert len(list((run_dir / "checkpoints").glob("*.h5"))) == n_ckpt == 8

    ckpts = sorted((run_dir / "checkpoints").glob("*.h5"))
    out = run_cli("inspect", ckpts[0])
    assert out.returncode == 0 and "shape sequence" in out.stdout
    meta = json.loads(run_cli("inspect", ckpts[0], "--json").stdout)
    assert meta["problem"] == "digits" and len(meta["arch_seq"]) == 11
    out = run_cli("match", ckpts[0], ckpts[-1], "--matcher", "lcs", "--json")
    mapping = json.loads(out.stdout)
    assert mapping["matcher"] == "lcs"
    for pair in mapping["pairs"]:
        assert pair["provider_index"] < mapping["provider_tensors"]
    out = run_cli("match", ckpts[0], ckpts[0], "--matcher", "lp")
    assert out.returncode == 0 and f"{meta and len(meta['tensors'])} of {len(meta['tensors'])}" in out.stdout

    # the weight lineage of every candidate, founder first (whichever got providers: async order)
    from wtnas_cli.results.lineage import founders_and_depths
    from wtnas_cli.run.store import RunStore

    rows = RunStore(run_dir / "wtnas.sqlite").candidates()
    founder, depth = founders_and_depths(rows)
    for r in rows:
        shown = json.loads(run_cli("show", run_dir, str(r["id"]), "--json").stdout)
        chain = shown["chain"]
        assert chain[-1]["id"] == r["id"] and shown["depth"] == depth[r["id"]] == len(chain) - 1
        assert shown["founder"] == founder[r["id"]] == chain[0]["id"] and chain[0]["received_from"] is None
        for above, row in zip(chain, chain[1:]):
            assert row["received_from"] == row["provider_id"] == above["id"] and row["n_transferred"] > 0
            assert len(row["changed_nodes"]) == row["distance"]
    deepest = max(rows, key=lambda r: depth[r["id"]])
    out = run_cli("show", run_dir, str(deepest["id"]))
    assert out.returncode == 0 and f"depth {depth[deepest['id']]}" in out.stdout
    _one_line_error(run_cli("show", run_dir, "99"), "no candidate 99", "ids 0-7")

    # a truncated checkpoint is refused by match with one line
    data = ckpts[1].read_bytes()
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(data[: len(data) // 3])
    _one_line_error(run_cli("match", trunc, ckpts[0]), "truncated or corrupt")

    out = run_cli("run", "--max-evals", "3", "--population", "2", "--sample", "1", "--run-dir", run_dir,
                  "--overwrite")
    assert out.returncode == 0, out.stderr
    assert len(list((run_dir / "checkpoints").glob("*.h5"))) == 3


def test_run_dir_that_is_not_a_run_is_never_deleted(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    _one_line_error(run_cli("run", "--run-dir", tmp_path, "--overwrite"), "is not a wtnas run")
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_resume_needs_a_run(tmp_path):
    _one_line_error(run_cli("run", "--resume", tmp_path), "holds no wtnas run")


def test_a_run_whose_candidates_all_fail_alike_stops_with_the_reason(tmp_path):
    """--device cuda on a machine without a GPU: every candidate would fail the same way; the run
    stops after the first few with that reason on the terminal and a non-zero exit."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = run_cli("run", "--device", "cuda", "--max-evals", "40", "--workers", "2", "--run-dir", tmp_path / "r")
    assert out.returncode == 1
    error = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "all failed with the same error" in error[0] and "use --device cpu" in error[0]
    with sqlite3.connect(tmp_path / "r" / "wtnas.sqlite") as db:   # stopped early, what ran is stored
        done = db.execute("SELECT COUNT(*) FROM candidates WHERE status = 'failed'").fetchone()[0]
    assert 5 <= done < 40


@pytest.mark.parametrize("width", [60, 80, 100, 120, 160])
def test_the_progress_line_fits_its_width_and_keeps_the_counts(width):
    """At 80 columns (a small terminal, or a log) the progress line drops the controls' lift, the
    transfer share and the bar before the numbers that say how far the run is."""
    import io

    from rich.console import Console
    from rich.progress import Progress

    from wtnas_cli.cli.run import progress_columns

    for total in (200, 100_000):
        buf = io.StringIO()
        progress = Progress(*progress_columns(width), console=Console(file=buf, width=width), auto_refresh=False)
        progress.add_task("search", total=total, completed=total - 1, best="0.9805", transfer="100%", failed=1234,
                          lift="+0.241±0.096 τ 0.70 (n=100)")
        progress.start()
        progress.stop()
        line = [text for text in buf.getvalue().splitlines() if "search" in text][-1]
        assert len(line) <= width
        assert f"{total - 1}/{total}" in line and "best 0.9805" in line and "ETA" in line and "0:00:0" in line
        assert ("failed 1234" in line) == (width >= 64) and ("lift +0.241" in line) == (width >= 112)
