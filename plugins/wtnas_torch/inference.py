"""A built model as the function it serves: what `native()` hands Python users and what the
`torch` and `onnx` exports trace (softmax outputs for classification; raw inputs when the run
normalizes its data)."""

from __future__ import annotations

import torch


class Inference(torch.nn.Module):
    """The function a `TorchModel`'s `predict` computes (softmax outputs for classification), taking one
    tensor per model input as positional arguments."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.model(xs)


class Normalized(torch.nn.Module):
    """`(x - shift) / scale` per channel (last axis) of each raw input, then the model: the run's
    stored statistics as float64 buffers, so the file takes what the user's data file holds."""

    def __init__(self, inner: torch.nn.Module, normalization):
        super().__init__()
        self.inner = inner
        self.count = len(normalization.inputs)
        for j, spec in enumerate(normalization.inputs):
            self.register_buffer(f"shift{j}", torch.tensor(spec["shift"], dtype=torch.float64))
            self.register_buffer(f"scale{j}", torch.tensor(spec["scale"], dtype=torch.float64))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        ready = [((x.to(torch.float64) - getattr(self, f"shift{j}")) / getattr(self, f"scale{j}")).to(torch.float32)
                 for j, x in enumerate(xs)]
        return self.inner(*ready)
