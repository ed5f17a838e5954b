"""Run every benchmark and save the raw numbers to benchmarks/results/<date>-<host>.json."""

import json
import platform
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_checkpoint  # noqa: E402
import bench_matching  # noqa: E402
import bench_overhead  # noqa: E402
import bench_startup  # noqa: E402


def main() -> None:
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "host": socket.gethostname(),
               "machine": f"{platform.machine()}, {platform.processor() or '?'}, python {platform.python_version()}"}
    for name, mod in (("startup", bench_startup), ("matching", bench_matching),
                      ("checkpoint", bench_checkpoint), ("overhead", bench_overhead)):
        print(f"== {name}")
        results[name] = mod.main()
    out = Path(__file__).parent / "results" / f"{time.strftime('%Y-%m-%d')}-{socket.gethostname()}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
