#!/usr/bin/env bash
# One-shot check on a CUDA machine (python3 there already has torch, h5py, typer, rich, pluggy, sklearn, xxhash, pyyaml).
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_torch_backend.py tests/test_strategies.py \
    "tests/test_safe_transfer.py::test_role_blind_copy_into_a_variance_fails_the_candidate[torch]" 2>&1 | tail -5
wtnas run --devices auto --workers 2 --max-evals 60 --controls 0.2 --run-dir /tmp/gpurun 2>&1 | tail -4
wtnas topk /tmp/gpurun --k 3 --max-epochs 3 2>&1 | tail -4
python3 -c "
import sqlite3; c = sqlite3.connect('/tmp/gpurun/wtnas.sqlite')
print('candidates, workers, mean train_s:', c.execute('select count(*), count(distinct worker), avg(train_s) from candidates').fetchone())"
