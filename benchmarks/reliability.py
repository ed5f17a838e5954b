"""Kill real searches at random points and resume them; count what survives.

    python benchmarks/reliability.py [RUNS] [KILLS_PER_RUN]

Each run is SIGKILLed (scheduler and workers, as on power loss) KILLS_PER_RUN times at random
numbers of finished candidates, resumed each time, and checked: ids 0..N-1 exactly once, nothing
pending, every provider present and finished before its child, every checkpoint present, no
partial file. Candidates lost = asked - stored.
"""

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import harness  # noqa: E402


def main(runs: int = 3, kills: int = 4, total: int = 30, seed: int = 0) -> dict:
    rng = random.Random(seed)
    tried = survived = lost = 0
    t0 = time.time()
    with tempfile.TemporaryDirectory() as d:
        for k in range(runs):
            run_dir = Path(d) / f"run{k}"
            points = sorted(rng.sample(range(1, total - 1), kills))
            proc = harness.start("run", "--population", "6", "--sample", "3", "--workers", "2", "--seed", str(k),
                                 "--max-evals", str(total), "--run-dir", str(run_dir))
            for point in points:
                harness.wait_until(lambda: harness.finished(run_dir) >= point, proc=proc)
                harness.kill_group(proc)
                tried += 1
                proc = harness.start("run", "--resume", str(run_dir))
            proc.communicate(timeout=600)
            try:
                facts = harness.check_run(run_dir, total)
                survived += kills
                lost += total - facts["ok"] - facts["failed"]
                print(f"run {k}: killed at {points} finished candidates, resumed {kills}x: consistent, "
                      f"{facts['ok']} ok, {facts['failed']} failed")
            except AssertionError as exc:
                print(f"run {k}: INCONSISTENT after kills at {points}: {exc}")
    print(f"kill points tried {tried}, survived {survived}, candidates lost {lost} ({time.time() - t0:.0f} s)")
    return {"kill_points": tried, "survived": survived, "candidates_lost": lost}


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
