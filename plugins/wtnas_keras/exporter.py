"""`wtnas export --format keras`: a Keras-built candidate as a `.keras` file that needs no wtnas.

The candidate's own Keras layers (weights loaded) are wired into a Functional model, the one
format `keras.saving.load_model` reads back without custom code. Every layer is a built-in Keras
layer; the one wtnas layer, AddByPadding (Uno's residual cells), is written as built-in layers
(reshape, zero-pad the last axis, add), so no custom object is needed to load the file, on any
Keras engine. Inputs are channels-last (N, ..., C), as Keras takes them.

A run that normalizes its data (`data.normalize`) gets its stored statistics as a built-in
`Rescaling` layer per input (scale 1/scale, offset -shift/scale per channel, in float64, then
float32 for the model), so the file takes raw inputs.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from wtnas_cli.model import ops as O


def _padded(keras, x, width: int, name: str):
    """`x` (N, ..., C) zero-padded on its last axis to `width`, with built-in layers only."""
    shape = tuple(int(d) for d in x.shape[1:])
    channels, rest = shape[-1], shape[:-1]
    if channels == width:
        return x
    pad = keras.layers.ZeroPadding1D((0, width - channels), name=f"{name}_pad")
    if not rest:   # (N, C) -> (N, C, 1) -> pad axis 1 -> (N, W)
        x = keras.layers.Reshape((channels, 1), name=f"{name}_in")(x)
        return keras.layers.Reshape((width,), name=f"{name}_out")(pad(x))
    rank = len(shape)  # channels first, the rest flattened, padded, then back
    x = keras.layers.Permute((rank,) + tuple(range(1, rank)), name=f"{name}_cfirst")(x)
    x = keras.layers.Reshape((channels, math.prod(rest)), name=f"{name}_in")(x)
    x = keras.layers.Reshape((width,) + rest, name=f"{name}_out")(pad(x))
    return keras.layers.Permute(tuple(range(2, rank + 1)) + (1,), name=f"{name}_clast")(x)


def _normalizing(keras, x, spec: dict, name: str):
    """`(x - shift) / scale` per channel of a raw input, with built-in layers only: a float64
    Rescaling (x * (1/scale) + (-shift/scale)), then back to float32."""
    shift, scale = np.asarray(spec["shift"], np.float64), np.asarray(spec["scale"], np.float64)
    x = keras.layers.Rescaling(scale=1.0 / scale, offset=-shift / scale, dtype="float64", name=f"{name}_normalize")(x)
    return keras.layers.Identity(dtype="float32", name=f"{name}_normalized")(x)


def functional_model(model, normalization=None):
    """The KerasModel's layers, called in graph order on symbolic inputs: a keras.Model that
    predicts what `model.predict` does (on raw inputs, if `normalization` is given)."""
    keras = model.engine.keras
    arch = model.arch
    with model.engine.scope():
        inputs = [keras.Input(shape=tuple(i.shape), name=i.name) for i in arch.inputs]
        values = dict(zip((i.name for i in arch.inputs), inputs))
        if normalization is not None:
            for i, spec in zip(arch.inputs, normalization.inputs):
                values[i.name] = _normalizing(keras, values[i.name], spec, i.name)
        for layer, k, merge, _ in model._nodes:
            args = [values[n] for n in layer.inputs]
            if isinstance(layer.op, O.AddByPadding):
                width = max(int(a.shape[-1]) for a in args)
                args = [_padded(keras, a, width, f"{layer.name}_{j}") for j, a in enumerate(args)]
                values[layer.name] = (keras.layers.Add(name=layer.name)(args) if len(args) > 1
                                      else keras.layers.Identity(name=layer.name)(args[0]))
            else:
                values[layer.name] = k(args if merge else args[0])
        return keras.Model(inputs if len(inputs) > 1 else inputs[0], values[arch.output], name="wtnas_candidate")


class KerasExporter:
    suffix = ".keras"
    layout = ("Keras model: `keras.saving.load_model(path).predict(x)`, channels-last (N, ..., C) float32; "
              "several inputs as a list in the order above; Keras needs a backend installed: without "
              "TensorFlow set KERAS_BACKEND=torch (or jax) before importing keras")

    @property
    def backend(self) -> str:
        """Keras on PyTorch, unless this process already runs Keras on TensorFlow."""
        keras = sys.modules.get("keras")
        if keras is not None and getattr(keras, "backend", None) is not None and keras.backend.backend() == "tensorflow":
            return "keras-tensorflow"
        return "keras"

    def export(self, model, path: str, inputs: list[np.ndarray], normalization=None) -> None:
        _skip_tensorflow()
        functional_model(model, normalization).save(path)

    def predict(self, path: str, inputs: list[np.ndarray]) -> np.ndarray:
        import keras

        _skip_tensorflow()
        loaded = keras.saving.load_model(path)
        x = [np.asarray(a, np.float32) for a in inputs]
        return np.asarray(loaded.predict(x if len(x) > 1 else x[0], batch_size=1024, verbose=0))


def _skip_tensorflow() -> None:
    """Keras' (de)serialization imports TensorFlow whenever it is installed, only to recognise TF
    shapes (~8 s, ~300 MB); on another engine nothing it saves is a TF object. Tell Keras' lazy
    TF module it is unavailable unless TF is loaded already (a private attribute: if Keras renames
    it, this does nothing and TF is imported as before)."""
    if "tensorflow" in sys.modules:
        return
    try:
        from keras.src.utils.module_utils import tensorflow as lazy_tf
    except ImportError:
        return
    if getattr(lazy_tf, "module", None) is None and hasattr(lazy_tf, "_available"):
        lazy_tf._available = False
