"""Keras 3 engines: where a Keras model's tensors live and how one training step runs.

Keras 3 runs on one engine per process (TensorFlow, PyTorch or JAX), fixed when `keras` is first
imported. wtnas offers two, measured side by side in docs/benchmarks.md:

- `torch` (backend `keras`): eager steps with torch autograd; a candidate's first step costs no
  more than its others, so small models train at close to plain-torch speed.
- `tensorflow` (backend `keras-tensorflow`, the paper's engine): one graph-compiled step per
  model; tracing it costs ~1 s per candidate, whatever the model's size.

Both run the same Keras layers, initializers, Adam and losses, so checkpoints are identical in
layout and predictions agree with the torch backend to < 1e-4 (tests/test_keras_backend.py).

`--precision` (fp32 by default): `tf32` lets CUDA matmuls and convolutions use TensorFloat-32;
`bf16` runs the training step's forward pass and loss in bfloat16 while variables, gradients and
Adam stay float32 (checkpoints and transfer unchanged) and evaluation stays float32, as in the
torch backend. On torch it is torch's autocast around the step; on TensorFlow, whose eager ops
have no autocast, the layers carry Keras' `mixed_bfloat16` policy and the traced step calls them
through `__call__`, which applies it (`compute_in_bf16` below).
"""

from __future__ import annotations

import gc
import os
import random
import sys
from contextlib import nullcontext
from typing import Any, Callable

import numpy as np

from wtnas_cli.errors import WtnasError
from wtnas_cli.util.devices import require_cuda_for_tf32
from wtnas_cli.util.torch_device import configure_torch

ENGINES = ("torch", "tensorflow")
ADAM = {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}  # the paper's (Keras defaults)


def load_keras(engine: str):
    """Import Keras on `engine`, or refuse if this process already runs Keras on another one."""
    if engine not in ENGINES:
        raise WtnasError(f"unknown Keras engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != engine:
            raise WtnasError(f"this process already runs Keras on {keras.backend.backend()}, and Keras cannot "
                             f"switch engines in a process; run the {engine} backend in its own process")
        return keras
    os.environ["KERAS_BACKEND"] = engine  # overrides a KERAS_BACKEND the user's shell may set
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    # the engines leave ~10^6 long-lived objects: move them out of the collector's reach, or each
    # full collection (Keras' clear_session runs one per candidate) walks them all: 0.5 s, now ~2 ms
    gc.freeze()
    return keras


class TorchEngine:
    """Keras on PyTorch: eager steps, gradients by torch autograd, Keras' Adam applied in place."""

    name = "torch"
    # a full collection per build frees the last model at once (a dead Uno-sized model holds
    # ~150 MB until the collector's next full pass) and costs ~2 ms here
    collect_per_build = True

    # bf16 is autocast around the step: the layers keep the float32 policy and their fast `call`
    compute_in_bf16 = False

    def __init__(self, keras, *, threads: int | None, device: str, precision: str = "fp32"):
        import torch

        self.keras, self.torch, self.precision = keras, torch, precision
        # threads, device checks and full float32 on CUDA (unless tf32) exactly as the torch
        # backend sets them, so checkpoints reproduce across backends and devices
        chosen = configure_torch(threads=threads, device=device, precision=precision)
        self.device, self.device_type = str(chosen), chosen.type
        self.autocast = precision == "bf16"

    def scope(self):
        """Variables and tensors made inside live on the configured device."""
        return self.keras.device(self.device)

    def seed(self, seed: int) -> None:
        """What keras.utils.set_random_seed does for this engine (Keras draws its default seeds from
        Python's `random`), without it also importing TensorFlow (~300 MB) to seed that too."""
        random.seed(seed)
        np.random.seed(seed)
        self.torch.manual_seed(seed)

    def tensor(self, array: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def numpy(self, value) -> np.ndarray:
        return value.detach().cpu().numpy()

    def permute(self, value, order: np.ndarray):
        return value[self.torch.from_numpy(order).to(value.device)]

    def inference(self):
        return self.torch.no_grad()

    def train_step(self, loss_fn: Callable, variables: list, signature: Any) -> tuple[Callable, Any]:
        """The step, and the optimizer whose state `optimizer_arrays` reads."""
        params = [v.value for v in variables]
        adam = InPlaceAdam(self.torch, params)
        torch = self.torch

        def step(xs, y):
            with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.autocast):
                loss = loss_fn(xs, y)
            adam.step(torch.autograd.grad(loss, params))
            return loss.detach().float()

        return step, adam

    def optimizer_arrays(self, adam: "InPlaceAdam") -> list[np.ndarray]:
        """Adam's step count, then its first and second moments (for a promotion to continue)."""
        return ([np.asarray([adam.t], dtype=np.int64)] + [m.detach().cpu().numpy().copy() for m in adam.m]
                + [v.detach().cpu().numpy().copy() for v in adam.v])

    def load_optimizer_arrays(self, adam: "InPlaceAdam", arrays: list[np.ndarray]) -> None:
        n = len(adam.m)
        if len(arrays) != 1 + 2 * n or any(a.shape != tuple(m.shape) for a, m in zip(arrays[1:], adam.m + adam.v)):
            raise ValueError("the optimizer state does not fit this model")
        adam.t = int(arrays[0][0])
        with self.torch.no_grad():
            for target, array in zip(adam.m + adam.v, arrays[1:]):
                target.copy_(self.torch.from_numpy(array))


class InPlaceAdam:
    """Keras' Adam update rule (epsilon added outside the bias-corrected root, step size in
    float32), applied with in-place torch ops. `keras.optimizers.Adam` on torch computes the same
    update through five full-size temporaries per step: on Uno's 10 M-parameter models that made
    Keras 1.8x slower than torch; here one temporary remains (tests check the two agree)."""

    def __init__(self, torch, params: list):
        self.torch, self.params, self.t = torch, params, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def step(self, grads) -> None:
        torch, f32 = self.torch, np.float32
        self.t += 1
        b1, b2, eps = f32(ADAM["beta_1"]), f32(ADAM["beta_2"]), float(ADAM["epsilon"])
        alpha = float(f32(ADAM["learning_rate"]) * np.sqrt(f32(1) - b2 ** f32(self.t)) / (f32(1) - b1 ** f32(self.t)))
        with torch.no_grad():
            torch._foreach_mul_(self.m, float(b1))
            torch._foreach_add_(self.m, grads, alpha=1 - float(b1))
            torch._foreach_mul_(self.v, float(b2))
            torch._foreach_addcmul_(self.v, grads, grads, value=1 - float(b2))
            denom = torch._foreach_sqrt(self.v)
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(self.params, self.m, denom, value=-alpha)


class TensorFlowEngine:
    """Keras on TensorFlow: one step traced per model (with a free batch axis, so the last, shorter
    batch reuses it) and run as a graph; eager steps were 2.5x slower."""

    name = "tensorflow"
    # TensorFlow keeps Python objects of every traced step: a full collection per build walked
    # them all (0.9 s per digits candidate); its workers are replaced every 50 candidates instead
    collect_per_build = False

    def __init__(self, keras, *, threads: int | None, device: str, precision: str = "fp32"):
        import tensorflow as tf

        self.keras, self.tf, self.precision = keras, tf, precision
        self.compute_in_bf16 = precision == "bf16"   # the layers' mixed_bfloat16 policy, applied by __call__
        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # already initialized in this process
                pass
        gpus = tf.config.list_physical_devices("GPU")
        if device.startswith("cuda") and not gpus:
            raise WtnasError(f"device {device!r} asked for but TensorFlow sees no GPU; use --device cpu")
        if device == "cpu" and gpus:
            tf.config.set_visible_devices([], "GPU")
        require_cuda_for_tf32(precision, device)
        # TensorFlow turns TF32 on by default on Ampere and later: fp32 means full float32 here too
        tf.config.experimental.enable_tensor_float_32_execution(precision == "tf32")

    def scope(self):
        return nullcontext()

    def seed(self, seed: int) -> None:
        self.keras.utils.set_random_seed(seed)

    def tensor(self, array: np.ndarray):
        return self.tf.convert_to_tensor(array)

    def numpy(self, value) -> np.ndarray:
        return np.asarray(value)

    def permute(self, value, order: np.ndarray):
        return self.tf.gather(value, order)

    def inference(self):
        return nullcontext()

    def train_step(self, loss_fn: Callable, variables: list, signature: Any) -> tuple[Callable, Any]:
        tf = self.tf
        optimizer = self.keras.optimizers.Adam(**ADAM)
        optimizer.build(variables)
        xs_spec, y_spec = signature
        spec = ([tf.TensorSpec((None,) + s, tf.as_dtype(d)) for s, d in xs_spec],
                tf.TensorSpec((None,) + y_spec[0], tf.as_dtype(y_spec[1])))

        def step(xs, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(xs, y)
            optimizer.apply(tape.gradient(loss, variables), variables)
            return loss

        return tf.function(step, input_signature=spec, autograph=False), optimizer

    def optimizer_arrays(self, optimizer) -> list[np.ndarray]:
        """Keras Adam's variables (iterations, moments) in its own order."""
        return [np.asarray(v.numpy()).copy() for v in optimizer.variables]

    def load_optimizer_arrays(self, optimizer, arrays: list[np.ndarray]) -> None:
        variables = optimizer.variables
        if len(arrays) != len(variables) or any(tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables)):
            raise ValueError("the optimizer state does not fit this model")
        for variable, array in zip(variables, arrays):
            variable.assign(array)


def create_engine(engine: str, *, threads: int | None, device: str, precision: str = "fp32"):
    keras = load_keras(engine)
    cls = TorchEngine if engine == "torch" else TensorFlowEngine
    return cls(keras, threads=threads, device=device, precision=precision)
