"""`wtnas --help` beside a bare Typer app with as many commands: median wall times, their ratio
(target <= 1.5x, issue #14) and which heavy modules `--help` imports (target: none).

    python benchmarks/bench_startup.py [--repeats 15]

The bare app is written to a temporary file: one Typer app, the same number of commands, each
with a docstring and three options, and nothing else imported. The two are run alternately so
that load on the machine affects both alike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("numpy", "torch", "tensorflow", "keras", "ray", "mpi4py", "h5py", "matplotlib", "sklearn")


def bare_app(commands: int) -> str:
    lines = ["import typer", "app = typer.Typer(add_completion=False)"]
    for i in range(commands):
        lines += [f"@app.command('cmd{i}')",
                  f"def cmd{i}(path: str = typer.Argument('x'), count: int = 3, flag: bool = False, name: str = 'a'):",
                  f"    '''Command {i}: does one thing with a path and a few options.'''", "    pass"]
    lines += ["app()"]
    return "\n".join(lines) + "\n"


def command_count() -> int:
    from wtnas_cli.cli import app

    return len(app.registered_commands) + len(app.registered_groups)


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    return time.perf_counter() - t


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    n = command_count()
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare_app.py"
        bare.write_text(bare_app(n))
        wtnas_cmd, bare_cmd = [sys.executable, "-m", "wtnas_cli", "--help"], [sys.executable, str(bare), "--help"]
        wall(wtnas_cmd), wall(bare_cmd)     # warm the file cache for both
        wtnas_times, bare_times = [], []
        for _ in range(args.repeats):
            wtnas_times.append(wall(wtnas_cmd))
            bare_times.append(wall(bare_cmd))
    code = ("import sys\nfrom wtnas_cli.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY', ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    heavy = out.split("HEAVY", 1)[1].strip() or "none"
    w, b = statistics.median(wtnas_times), statistics.median(bare_times)
    print(f"wtnas --help: median {w * 1000:.0f} ms; a bare Typer app with {n} commands: {b * 1000:.0f} ms; "
          f"ratio {w / b:.2f}x (target <= 1.5x) over {args.repeats} alternating runs; "
          f"heavy modules imported: {heavy}")
    return {"help_median_s": w, "bare_typer_median_s": b, "ratio": w / b, "commands": n, "heavy_imports": heavy}


if __name__ == "__main__":
    main()
