"""Keras 3 (TensorFlow) implementation of the backend protocol.

Keras' weight layout *is* the canonical layout, so tensors go in and out unchanged; the shape
sequence is the architecture's layer order and, within a layer, Keras' weight order (kernel,
bias; gamma, beta, moving_mean, moving_variance), exactly as the torch backend's. Training uses
the paper's Adam (lr 1e-3, betas 0.9/0.999, eps 1e-7) on batches shuffled by the job's seed.
Every build clears the Keras session, so a worker's memory does not grow over many candidates.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wtnas_cli import ops as O  # noqa: E402
from wtnas_cli.errors import WtnasError  # noqa: E402
from wtnas_cli.problem import Dataset, Problem, as_inputs, extra_metrics, objective_value  # noqa: E402
from wtnas_cli.space import Architecture, Layer  # noqa: E402

_LOSSES = {"categorical_crossentropy": "sparse_categorical_crossentropy", "mse": "mse", "mae": "mae"}


class AddByPadding(keras.layers.Layer):
    """Zero-pad every input's last axis to the widest, then add (DeepHyper's residual cells)."""

    def call(self, inputs):
        width = max(int(t.shape[-1]) for t in inputs)
        padded = [keras.ops.pad(t, [[0, 0]] * (len(t.shape) - 1) + [[0, width - int(t.shape[-1])]]) for t in inputs]
        out = padded[0]
        for t in padded[1:]:
            out = out + t
        return out


def _act(name):
    return None if name in (None, "linear") else name


def _keras_layer(layer: Layer):
    op, name = layer.op, layer.name
    reg = lambda l2: keras.regularizers.L2(l2) if l2 else None
    if isinstance(op, O.Dense):
        return keras.layers.Dense(op.units, activation=_act(op.activation), kernel_regularizer=reg(op.l2), name=name)
    if isinstance(op, (O.Conv1D, O.Conv2D)):
        cls = keras.layers.Conv1D if isinstance(op, O.Conv1D) else keras.layers.Conv2D
        return cls(op.filters, op.kernel_size, strides=op.strides, padding=op.padding,
                   activation=_act(op.activation), kernel_regularizer=reg(op.l2), name=name)
    if isinstance(op, O._Pool):
        cls = {"MaxPool1D": keras.layers.MaxPooling1D, "MaxPool2D": keras.layers.MaxPooling2D,
               "AvgPool1D": keras.layers.AveragePooling1D, "AvgPool2D": keras.layers.AveragePooling2D}[op.kind]
        return cls(op.pool_size, strides=op.stride, padding="valid", name=name)
    if isinstance(op, O.BatchNorm):
        return keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name=name)
    if isinstance(op, O.Dropout):
        return keras.layers.Dropout(op.rate, name=name)
    if isinstance(op, O.Activation):
        return keras.layers.Activation(op.function, name=name)
    if isinstance(op, O.Flatten):
        return keras.layers.Flatten(name=name)
    if isinstance(op, O.Identity):
        return keras.layers.Identity(name=name)
    if isinstance(op, O.Concatenate):
        return keras.layers.Concatenate(axis=-1, name=name)
    if isinstance(op, O.AddByPadding):
        return AddByPadding(name=name)
    raise WtnasError(f"keras backend has no implementation of op {op.kind}")


class KerasModel:
    def __init__(self, problem: Problem, arch: Architecture):
        self.problem, self.arch = problem, arch
        inputs = [keras.Input(shape=i.shape, name=i.name) for i in arch.inputs]
        values = {i.name: t for i, t in zip(arch.inputs, inputs)}
        self._weights = []
        for layer in arch.layers:
            k = _keras_layer(layer)
            args = [values[n] for n in layer.inputs]
            values[layer.name] = k(args if isinstance(layer.op, O.Merge) else args[0])
            if layer.weights:
                self._weights += list(k.weights)
        self.model = keras.Model(inputs, values[arch.output])
        self.specs = arch.tensor_specs()
        if [tuple(w.shape) for w in self._weights] != [s.shape for s in self.specs]:
            raise RuntimeError("keras model tensors do not follow the architecture's shape sequence")
        self.num_params = arch.num_params
        self.model.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
                           loss=_LOSSES[problem.loss], jit_compile=False)  # graph mode: eager was 2x slower

    def get_tensors(self) -> list[np.ndarray]:
        return [np.ascontiguousarray(w.numpy(), dtype=np.float32) for w in self._weights]

    def set_tensors(self, tensors: dict[int, np.ndarray]) -> None:
        for i, arr in tensors.items():
            if tuple(arr.shape) != self.specs[i].shape:
                raise ValueError(f"tensor {i}: shape {arr.shape} does not fit {self.specs[i].shape}")
            self._weights[i].assign(np.asarray(arr, dtype=np.float32))

    def train_epoch(self, data: Dataset, seed: int) -> float:
        order = np.random.default_rng(seed).permutation(len(data.y_train))
        xs = [np.asarray(x, np.float32)[order] for x in as_inputs(data.x_train)]
        keras.utils.set_random_seed(seed % (2 ** 31))  # dropout
        history = self.model.fit(xs, np.asarray(data.y_train)[order],
                                 batch_size=self.problem.batch_size, epochs=1, shuffle=False, verbose=0)
        return float(history.history["loss"][-1])

    def predict(self, x, batch: int = 1024) -> np.ndarray:
        """Direct calls in inference mode: no per-model graph tracing as Model.predict would do."""
        xs = [np.asarray(a, np.float32) for a in as_inputs(x)]
        outs = [self.model([a[i:i + batch] for a in xs], training=False) for i in range(0, len(xs[0]), batch)]
        return np.concatenate([np.asarray(o) for o in outs])

    def evaluate(self, data: Dataset) -> float:
        pred, y = self.predict(data.x_val), np.asarray(data.y_val)
        self.last_metrics = extra_metrics(self.problem.loss, pred, y)
        return objective_value(self.problem.objective, pred, y)


class KerasBackend:
    name = "keras"

    def configure(self, *, threads: int | None = None, device: str = "cpu") -> None:
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

    def build(self, problem: Problem, arch: Architecture, seed: int) -> KerasModel:
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed % (2 ** 31))
        return KerasModel(problem, arch)
