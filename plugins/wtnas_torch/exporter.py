"""`wtnas export --format torch|onnx`: a torch-built candidate as a file that needs no wtnas.

Both go through `torch.export`, which traces the model into a graph of ATen operations with the
weights inside: nothing of wtnas' Python classes is needed to load it. `torch` writes that
program (`.pt2`, `torch.export.load(path).module()`); TorchScript (`torch.jit`) would work for
these models too, but is deprecated in favour of `torch.export`. `onnx` converts the same program
with torch's ONNX exporter (needs `onnxscript`; the older TorchScript-based exporter writes an
invalid Transpose for the negative axis of a channels-last view). The batch dimension stays
dynamic. Inputs are channels-last (N, ..., C), as wtnas' data and the torch backend's layers
take them (the backend views them as channels-first inside, without copying): not torch's
usual NCHW.

A run that normalizes its data (`data.normalize`) gets its stored statistics written into the
program as buffers, `(x - shift) / scale` per channel of each input in front of the model
(computed in float64, then float32, as wtnas computes it), so the file takes raw inputs.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch

from .backend import TorchModel
from .inference import Inference, Normalized


def export_program(model: TorchModel, inputs: list[np.ndarray], normalization=None) -> torch.export.ExportedProgram:
    module: torch.nn.Module = Inference(model).eval()
    if normalization is not None:
        module = Normalized(module, normalization).eval()
    # a batch of one would make torch.export fix the batch size at 1
    examples = tuple(torch.from_numpy(np.ascontiguousarray(a if len(a) >= 2 else np.concatenate([a, a]), np.float32))
                     for a in inputs)
    batch = torch.export.Dim("batch")
    with torch.no_grad():
        return torch.export.export(module, examples, dynamic_shapes=(tuple({0: batch} for _ in examples),))


class TorchExporter:
    backend = "torch"
    suffix = ".pt2"
    layout = ("torch.export program: `torch.export.load(path).module()(*inputs)`, one float32 tensor per input "
              "in the order above, channels-last (N, ..., C), not torch's usual NCHW")

    def export(self, model: TorchModel, path: str, inputs: list[np.ndarray], normalization=None) -> None:
        torch.export.save(export_program(model, inputs, normalization), path)

    def predict(self, path: str, inputs: list[np.ndarray]) -> np.ndarray:
        module = torch.export.load(path).module()
        with torch.no_grad():
            return module(*(torch.from_numpy(np.asarray(a, np.float32)) for a in inputs)).numpy()


class OnnxExporter:
    backend = "torch"
    suffix = ".onnx"
    layout = ("ONNX model: float32 inputs named as above, channels-last (N, ..., C), one output named "
              "'output'; e.g. onnxruntime.InferenceSession(path).run(None, {name: array})")

    def export(self, model: TorchModel, path: str, inputs: list[np.ndarray], normalization=None) -> None:
        program = export_program(model, inputs, normalization)
        names = [i.name for i in model.arch.inputs]
        quiet = logging.getLogger("torch.onnx")
        level = quiet.level
        quiet.setLevel(logging.ERROR)   # "torchvision is not installed" and progress lines
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                onnx_program = torch.onnx.export(program, (), None, dynamo=True, input_names=names,
                                                 output_names=["output"], verbose=False)
                assert onnx_program is not None   # dynamo=True returns an ONNXProgram
                onnx_program.save(path)
        finally:
            quiet.setLevel(level)

    def predict(self, path: str, inputs: list[np.ndarray]) -> np.ndarray:
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        feeds = {i.name: np.asarray(a, np.float32) for i, a in zip(session.get_inputs(), inputs)}
        return session.run(None, feeds)[0]
