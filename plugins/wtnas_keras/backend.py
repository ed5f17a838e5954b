"""Keras 3 implementation of the backend protocol, on the engine its registered name selects.

Keras' weight layout *is* the canonical layout, so tensors go in and out unchanged; the shape
sequence is the architecture's layer order and, within a layer, Keras' weight order (kernel,
bias; gamma, beta, moving_mean, moving_variance), exactly as the torch backend's. Training uses
the paper's Adam (lr 1e-3, betas 0.9/0.999, eps 1e-7) on batches shuffled by the job's seed.

A model is the architecture's Keras layers, built and called directly in graph order: Keras'
Functional graph, `fit` and `predict` machinery cost more per candidate than training a small
model does (docs/benchmarks.md, "Keras speed"), and nothing of it is needed here.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from wtnas_cli.model import ops as O
from wtnas_cli.errors import WtnasError
from wtnas_cli.model.problem import Dataset, Problem, as_inputs, extra_metrics, objective_value
from wtnas_cli.model.space import Architecture, Layer
from wtnas_cli.util.memory import in_fitting_batches

from .engines import TensorFlowEngine, TorchEngine, create_engine

_WITH_TRAINING = (O.Dropout, O.BatchNorm)   # layers whose call differs between training and inference


def _keras_layer(keras, layer: Layer, dtype: str | None = None):
    """The Keras layer of `layer`; `dtype` a Keras dtype policy (None: float32)."""
    op, common = layer.op, {"name": layer.name, "dtype": dtype}
    act = lambda a: None if a in (None, "linear") else a
    reg = lambda l2: keras.regularizers.L2(l2) if l2 else None
    if isinstance(op, O.Dense):
        return keras.layers.Dense(op.units, activation=act(op.activation), kernel_regularizer=reg(op.l2), **common)
    if isinstance(op, (O.Conv1D, O.Conv2D)):
        cls = keras.layers.Conv1D if isinstance(op, O.Conv1D) else keras.layers.Conv2D
        return cls(op.filters, op.kernel_size, strides=op.strides, padding=op.padding,
                   activation=act(op.activation), kernel_regularizer=reg(op.l2), **common)
    if isinstance(op, O._Pool):
        cls = {"MaxPool1D": keras.layers.MaxPooling1D, "MaxPool2D": keras.layers.MaxPooling2D,
               "AvgPool1D": keras.layers.AveragePooling1D, "AvgPool2D": keras.layers.AveragePooling2D}[op.kind]
        return cls(op.pool_size, strides=op.stride, padding="valid", **common)
    if isinstance(op, O.BatchNorm):
        return keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3, **common)
    if isinstance(op, O.Dropout):
        return keras.layers.Dropout(op.rate, **common)
    if isinstance(op, O.Activation):
        return keras.layers.Activation(op.function, **common)
    if isinstance(op, O.Flatten):
        return keras.layers.Flatten(**common)
    if isinstance(op, O.Identity):
        return keras.layers.Identity(**common)
    if isinstance(op, O.Concatenate):
        return keras.layers.Concatenate(axis=-1, **common)
    if isinstance(op, O.AddByPadding):
        return _add_by_padding(keras)(**common)
    raise WtnasError(f"keras backend has no implementation of op {op.kind}")


_ADD_BY_PADDING: dict = {}


def _add_by_padding(keras):
    """Zero-pad every input's last axis to the widest, then add (DeepHyper's residual cells)."""
    if "cls" not in _ADD_BY_PADDING:
        layer_base: Any = keras.layers.Layer   # a runtime base class (the engine's keras)

        class AddByPadding(layer_base):
            def call(self, inputs):
                width = max(int(t.shape[-1]) for t in inputs)
                out = None
                for t in inputs:
                    pad = [[0, 0]] * (len(t.shape) - 1) + [[0, width - int(t.shape[-1])]]
                    t = keras.ops.pad(t, pad) if int(t.shape[-1]) < width else t
                    out = t if out is None else out + t
                return out

            def compute_output_shape(self, shapes):
                return tuple(shapes[0][:-1]) + (max(s[-1] for s in shapes),)

        _ADD_BY_PADDING["cls"] = AddByPadding
    return _ADD_BY_PADDING["cls"]


class KerasModel:
    def __init__(self, engine, problem: Problem, arch: Architecture):
        keras = engine.keras
        self.engine, self.problem, self.arch = engine, problem, arch
        self._nodes, self._weights, self._penalties = [], [], []
        # bf16 on TensorFlow: the layers' mixed policy, applied when the traced step calls them;
        # the output layer stays float32, as Keras advises, so the softmax and loss are not rounded
        # to bfloat16 (what torch's autocast does too; on digits the two differed by < 0.02 of
        # second-half search score, within the spread between seeds)
        self._mixed = engine.compute_in_bf16
        self._bf16 = engine.precision == "bf16"   # a bf16 forward's output is cast for the loss
        policy = "mixed_bfloat16" if self._mixed else None
        with engine.scope():
            for layer in arch.layers:
                k = _keras_layer(keras, layer, None if layer.name == arch.output else policy)
                if isinstance(layer.op, O.Merge):
                    k.build([(None,) + tuple(s) for s in layer.input_shapes])
                else:
                    k.build((None,) + tuple(layer.input_shape))
                self._nodes.append((layer, k, isinstance(layer.op, O.Merge), isinstance(layer.op, _WITH_TRAINING)))
                if layer.weights:
                    self._weights += list(k.weights)
                if getattr(k, "kernel_regularizer", None) is not None:
                    self._penalties.append((k.kernel_regularizer, k.kernel))
            self.specs = arch.tensor_specs()
            if [tuple(w.shape) for w in self._weights] != [s.shape for s in self.specs]:
                raise RuntimeError("keras model tensors do not follow the architecture's shape sequence")
            self._trainable = [w for _, k, _, _ in self._nodes for w in k.trainable_weights]
        self.num_params = arch.num_params
        self._step: Callable | None = None
        self._optimizer: Any = None
        self._pending_optimizer: list[np.ndarray] | None = None   # loaded before the step exists

    def forward(self, xs, training: bool):
        """The model's output. Layers are called through `call`, skipping `__call__`'s per-call work,
        except in a mixed-precision training step, where `__call__` applies the layers' policy."""
        values = dict(zip((i.name for i in self.arch.inputs), xs))
        mixed = training and self._mixed
        for layer, k, merge, with_training in self._nodes:
            args = [values[n] for n in layer.inputs]
            x = args if merge else args[0]
            run = k if mixed else k.call
            values[layer.name] = run(x, training=training) if with_training else run(x)
        return values[self.arch.output]

    def loss(self, xs, y):
        """The training loss of one batch: the problem's loss plus the layers' L2 penalties."""
        ops, losses = self.engine.keras.ops, self.engine.keras.losses
        out = self.forward(xs, training=True)
        if self._bf16:   # the loss in float32 (no cast op per batch in fp32)
            out = ops.cast(out, "float32")
        if self.problem.loss == "categorical_crossentropy":
            loss = ops.mean(losses.sparse_categorical_crossentropy(y, out))
        elif self.problem.loss == "mse":
            loss = ops.mean(ops.square(out - ops.reshape(y, ops.shape(out))))
        else:
            loss = ops.mean(ops.abs(out - ops.reshape(y, ops.shape(out))))
        for regularizer, kernel in self._penalties:
            loss = loss + regularizer(kernel)
        return loss

    # -- canonical tensors ----------------------------------------------------------------
    def get_tensors(self) -> list[np.ndarray]:
        return [np.ascontiguousarray(self.engine.numpy(w.value), dtype=np.float32) for w in self._weights]

    def set_tensors(self, tensors: dict[int, np.ndarray]) -> None:
        for i, arr in tensors.items():
            if tuple(arr.shape) != self.specs[i].shape:
                raise ValueError(f"tensor {i}: shape {arr.shape} does not fit {self.specs[i].shape}")
            self._weights[i].assign(np.asarray(arr, dtype=np.float32))

    # -- optimizer state (a promotion continues it: Job.keep_optimizer) --------------------
    def optimizer_state(self) -> tuple[dict, list[np.ndarray]]:
        kind = f"keras-{self.engine.name}-adam"
        if self._optimizer is None:   # never trained: nothing to continue
            return {"kind": kind, "trained": False}, []
        return {"kind": kind, "trained": True}, self.engine.optimizer_arrays(self._optimizer)

    def load_optimizer_state(self, state: dict, arrays: list[np.ndarray]) -> None:
        """Applied when the training step is built (its optimizer exists only then)."""
        if state.get("kind") != f"keras-{self.engine.name}-adam":
            raise ValueError(f"optimizer state {state.get('kind')!r} is not this engine's")
        if state.get("trained"):
            self._pending_optimizer = list(arrays)

    # -- training -------------------------------------------------------------------------
    def train_epoch(self, data: Dataset, seed: int) -> float:
        xs, y = _engine_data(self.engine, data, self.problem.loss)
        order = np.random.default_rng(seed).permutation(len(data.y_train))
        self.engine.seed(seed % (2 ** 31))  # dropout
        if self._step is None:
            signature = ([(tuple(a.shape[1:]), "float32") for a in as_inputs(data.x_train)],
                         (tuple(np.shape(data.y_train)[1:]), _label_dtype(self.problem.loss)))
            self._step, self._optimizer = self.engine.train_step(self.loss, self._trainable, signature)
            if self._pending_optimizer is not None:
                self.engine.load_optimizer_arrays(self._optimizer, self._pending_optimizer)
                self._pending_optimizer = None
        bs = self.problem.batch_size
        with self.engine.scope():
            xs = [self.engine.permute(x, order) for x in xs]
            y = self.engine.permute(y, order)
            total = 0.0
            for start in range(0, len(order), bs):
                stop = min(start + bs, len(order))
                total = total + self._step([x[start:stop] for x in xs], y[start:stop]) * (stop - start)
        return float(total) / max(len(order), 1)

    def predict(self, x, batch: int = 1024) -> np.ndarray:
        """Predictions for one input array, or a list of arrays for multi-input models."""
        xs = [self.engine.tensor(np.asarray(a, np.float32)) for a in as_inputs(x)]
        with self.engine.scope(), self.engine.inference():
            outs = [self.engine.numpy(self.forward([a[i:i + batch] for a in xs], training=False))
                    for i in range(0, len(xs[0]), batch)]
        return np.concatenate(outs)

    def native(self, normalization=None):
        """This model as a Keras Functional `Model` of its trained layers (`wtnas_cli.api.load_model`):
        `model.predict(x)` on channels-last inputs returns what `predict` does. With `normalization`
        (the run's stored statistics) it takes raw inputs, as the `.keras` export does."""
        from .exporter import functional_model

        return functional_model(self, normalization)

    def evaluate(self, data: Dataset) -> float:
        pred = in_fitting_batches(lambda batch: self.predict(data.x_val, batch=batch))
        y = np.asarray(data.y_val)
        self.last_metrics = extra_metrics(self.problem.loss, pred, y)
        return objective_value(self.problem.objective, pred, y)


def _label_dtype(loss: str) -> str:
    return "int64" if loss == "categorical_crossentropy" else "float32"


_DATA_CACHE: dict[tuple, tuple] = {}


def _engine_data(engine, data: Dataset, loss: str) -> tuple:
    """The training split as engine tensors, converted once per worker (the last dataset only)."""
    key = (id(data), engine.name, str(getattr(engine, "device", "")))
    if key not in _DATA_CACHE:
        ytype = _label_dtype(loss)
        with engine.scope():
            arrays = ([engine.tensor(np.asarray(a, np.float32)) for a in as_inputs(data.x_train)],
                      engine.tensor(np.asarray(data.y_train, ytype)))
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = (arrays, data)  # holding `data` keeps its id from being reused
    return _DATA_CACHE[key][0]


class KerasBackend:
    """`keras` runs Keras 3 on PyTorch, `keras-tensorflow` on TensorFlow (engines.py)."""

    def __init__(self, engine: str = "torch", name: str = "keras"):
        self.name, self.engine_name = name, engine
        self.engine: TorchEngine | TensorFlowEngine | None = None

    def configure(self, *, threads: int | None = None, device: str = "cpu", precision: str = "fp32") -> None:
        self.engine = create_engine(self.engine_name, threads=threads, device=device, precision=precision)

    def build(self, problem: Problem, arch: Architecture, seed: int) -> KerasModel:
        if self.engine is None:
            self.configure()
        assert self.engine is not None   # configure() made it
        keras = self.engine.keras
        keras.backend.clear_session(free_memory=self.engine.collect_per_build)  # layer names restart
        self.engine.seed(seed % (2 ** 31))
        return KerasModel(self.engine, problem, arch)
