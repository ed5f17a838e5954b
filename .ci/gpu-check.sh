#!/usr/bin/env bash
# One-shot check on a CUDA machine (python3 there already has torch, h5py, typer, rich, pluggy, sklearn).
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python3 -m pytest -q tests/test_gpu.py tests/test_torch_backend.py 2>&1 | tail -5
wtnas run --device cuda --max-evals 100 --workers 4 --run-dir /tmp/gpurun 2>&1 | tail -6
python3 benchmarks/bench_overhead.py 120 4 cuda 2>&1 | tail -3; python3 benchmarks/bench_overhead.py 120 4 cpu 2>&1 | tail -3
