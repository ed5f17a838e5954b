"""Fuzz the parsers with many inputs and count them (python benchmarks/fuzz.py [N per target])."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402

import fuzz_targets as F  # noqa: E402
from wtnas_builtins.problems.digits import digits_space  # noqa: E402


def main(n: int = 5000) -> dict:
    cfg = settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    space = digits_space()
    targets = {
        "config": given(F.config_texts)(F.fuzz_config),
        "arch_seq": given(F.arch_texts)(lambda text: F.fuzz_arch_seq(text, space)),
        "checkpoint (mutated)": given(F.mutations)(F.fuzz_checkpoint),
        "checkpoint (random bytes)": given(F.random_files)(F.fuzz_checkpoint_bytes),
        "search-space file": given(F.space_docs)(F.fuzz_space_file),
    }
    out = {}
    for name, target in targets.items():
        before = dict(F.COUNTS)
        t = time.perf_counter()
        cfg(target)()
        tried = sum(F.COUNTS.values()) - sum(before.values())
        out[name] = {"inputs": tried, "seconds": time.perf_counter() - t, "findings": 0}
        print(f"{name:26} {tried:6} inputs in {out[name]['seconds']:.1f} s: every one parsed or refused with "
              f"its WtnasError")
    return out


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
