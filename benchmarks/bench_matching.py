"""LP and LCS on two 300-tensor shape sequences (target: LCS < 5 ms), and LCS time vs length."""

import statistics
import time

import numpy as np

from wtnas_cli.weights.matching import match_lcs, match_lp


def _sequences(n: int, rng) -> tuple[list, list]:
    """Realistic shape sequences: conv/dense kernels with their biases, a receiver that differs
    by insertions, deletions and changed layers (what mutations do)."""
    widths = [8, 16, 32, 64, 128]
    def layer():
        w_in, w_out = rng.choice(widths, 2)
        if rng.random() < 0.5:
            k = int(rng.choice([1, 3, 5]))
            return [(k, k, int(w_in), int(w_out)), (int(w_out),)]
        return [(int(w_in), int(w_out)), (int(w_out),)]
    a = [s for _ in range(n // 2) for s in layer()]
    b = []
    for i in range(0, len(a), 2):
        r = rng.random() if i >= 20 else 1.0   # the first layers agree, as after a mutation
        if r < 0.1:
            continue                      # deleted layer
        if r < 0.2:
            b += layer()                  # changed layer
        else:
            b += a[i:i + 2]
        if i >= 20 and rng.random() < 0.1:
            b += layer()                  # inserted layer
    return a, b[:n] if len(b) >= n else b + [s for _ in range((n - len(b)) // 2) for s in layer()]


def _median_ms(fn, a, b, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(a, b)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main(repeats: int = 50) -> dict:
    rng = np.random.default_rng(0)
    a, b = _sequences(300, rng)
    lcs_ms = _median_ms(match_lcs, a, b, repeats)
    lp_ms = _median_ms(match_lp, a, b, repeats)
    print(f"300 x {len(b)} tensors: LCS median {lcs_ms:.2f} ms (target < 5 ms, {len(match_lcs(a, b))} pairs), "
          f"LP median {lp_ms:.3f} ms ({len(match_lp(a, b))} pairs)")
    scaling = {}
    for n in (10, 30, 100, 300, 1000):
        a, b = _sequences(n, rng)
        scaling[n] = _median_ms(match_lcs, a, b, max(5, repeats // 5))
    print("LCS time vs sequence length: " + ", ".join(f"{n}: {ms:.2f} ms" for n, ms in scaling.items()))
    return {"lcs_300_ms": lcs_ms, "lp_300_ms": lp_ms, "lcs_scaling_ms": scaling}


if __name__ == "__main__":
    main()
