"""`wtnas --help`: median wall time (target < 0.5 s) and which heavy modules it imports (none)."""

import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "tensorflow", "keras", "ray", "mpi4py", "h5py", "matplotlib", "sklearn")


def main(repeats: int = 15) -> dict:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "wtnas_cli", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    code = ("import sys\nfrom wtnas_cli.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY', ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    heavy = out.split("HEAVY", 1)[1].strip() or "none"
    median = statistics.median(times)
    print(f"wtnas --help: median {median * 1000:.0f} ms over {repeats} runs (min {min(times) * 1000:.0f} ms), "
          f"target < 500 ms; heavy modules imported: {heavy}")
    return {"help_median_s": median, "help_min_s": min(times), "heavy_imports": heavy}


if __name__ == "__main__":
    main()
