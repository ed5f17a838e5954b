"""PyTorch implementation of the backend protocol.

Activations flow channels-last (N, ..., C) between layers, exactly as in Keras, so Dense acts on
the last axis and Flatten yields Keras' order; convolutions and pooling view their input as
channels-first without copying (a permuted channels-last tensor is a channels_last-strided
tensor that torch convolves natively). Initialization follows Keras (Glorot-uniform kernels,
zero biases) and the optimizer is the paper's Adam (lr 1e-3, betas 0.9/0.999, eps 1e-7).
"""

from __future__ import annotations

from typing import Iterable, cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from wtnas_cli.model import ops as O
from wtnas_cli.model.problem import Dataset, Problem, as_inputs, extra_metrics, objective_value
from wtnas_cli.model.space import Architecture, Layer
from wtnas_cli.util.memory import in_fitting_batches
from wtnas_cli.util.torch_device import configure_torch

from .inference import Inference, Normalized

_ACT = {
    None: None, "linear": None, "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
    "softmax": lambda x: torch.softmax(x, dim=-1), "elu": F.elu, "selu": F.selu,
}

# canonical (Keras) <-> torch parameter layout, per op kind and rank of the kernel
_TO_TORCH = {2: (1, 0), 3: (2, 1, 0), 4: (3, 2, 0, 1)}      # canonical -> torch
_TO_CANON = {2: (1, 0), 3: (2, 1, 0), 4: (2, 3, 1, 0)}      # torch -> canonical


class _Node(nn.Module):
    """One layer; `tensors` lists (role, torch tensor) in the canonical spec order."""

    def __init__(self, layer: Layer):
        super().__init__()
        self.layer = layer
        op = layer.op
        self.activation = getattr(op, "activation", None)
        self.l2 = float(getattr(op, "l2", 0.0) or 0.0)
        in_shape = layer.input_shape
        self.module: nn.Module | None = None
        if isinstance(op, O.Dense):
            self.module = nn.Linear(in_shape[-1], op.units)
        elif isinstance(op, (O.Conv1D, O.Conv2D)):
            cls: type[nn.Module] = nn.Conv1d if isinstance(op, O.Conv1D) else nn.Conv2d
            pad = "same" if op.padding == "same" else 0
            self.module = cls(in_shape[-1], op.filters, op.kernel_size, stride=op.strides, padding=pad)
        elif isinstance(op, O._Pool):
            cls = {"MaxPool1D": nn.MaxPool1d, "MaxPool2D": nn.MaxPool2d,
                   "AvgPool1D": nn.AvgPool1d, "AvgPool2D": nn.AvgPool2d}[op.kind]
            self.module = cls(op.pool_size, stride=op.stride)
        elif isinstance(op, O.BatchNorm):
            # Keras defaults: momentum 0.99 (torch counts the other way: 0.01), epsilon 1e-3
            self.module = nn.BatchNorm1d(in_shape[-1], eps=1e-3, momentum=0.01)
        elif isinstance(op, O.Dropout):
            self.module = nn.Dropout(op.rate)
        elif isinstance(op, O.Activation):
            self.activation = op.function
        elif not isinstance(op, (O.Identity, O.Flatten, O.Concatenate, O.AddByPadding)):
            raise NotImplementedError(f"torch backend has no implementation of op {op.kind}")
        self.channels_first_view = isinstance(op, (O._Conv, O._Pool))
        if isinstance(self.module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.xavier_uniform_(self.module.weight)
            nn.init.zeros_(cast(torch.Tensor, self.module.bias))   # built with the default bias=True

    def tensors(self) -> list[tuple[str, torch.Tensor]]:
        m = self.module
        # casts: built with the defaults bias=True and track_running_stats=True, these are tensors
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            return [("kernel", m.weight), ("bias", cast(torch.Tensor, m.bias))]
        if isinstance(m, nn.BatchNorm1d):
            return [("gamma", m.weight), ("beta", m.bias), ("moving_mean", cast(torch.Tensor, m.running_mean)),
                    ("moving_variance", cast(torch.Tensor, m.running_var))]
        return []

    def forward(self, *xs: torch.Tensor, final_logits: bool = False) -> torch.Tensor:
        op = self.layer.op
        x = xs[0]
        if isinstance(op, O.Concatenate):
            x = torch.cat(xs, dim=-1)
        elif isinstance(op, O.AddByPadding):
            width = max(t.shape[-1] for t in xs)
            x = cast(torch.Tensor, sum(F.pad(t, (0, width - t.shape[-1])) for t in xs))   # xs is not empty
        elif isinstance(op, O.Flatten):
            x = x.reshape(x.shape[0], -1)
        elif self.channels_first_view:
            assert self.module is not None   # conv and pool layers have one
            x = self.module(x.movedim(-1, 1)).movedim(1, -1)
        elif isinstance(self.module, nn.BatchNorm1d):
            shape = x.shape
            x = self.module(x.reshape(-1, shape[-1])).reshape(shape)
        elif self.module is not None:
            x = self.module(x)
        if final_logits and self.activation == "softmax":
            return x
        act = _ACT[self.activation]
        return act(x) if act is not None else x


class TorchModel(nn.Module):
    def __init__(self, problem: Problem, arch: Architecture, device: torch.device, precision: str = "fp32"):
        super().__init__()
        self.arch = arch
        self.problem = problem
        self.nodes = nn.ModuleList(_Node(layer) for layer in arch.layers)
        self.input_names = [i.name for i in arch.inputs]
        self.specs = arch.tensor_specs()
        self._tensors = [t for node in self._node_list() for _, t in node.tensors()]
        if len(self._tensors) != len(self.specs):
            raise RuntimeError("torch model tensors do not follow the architecture's shape sequence")
        self.num_params = arch.num_params
        self.device = device
        self.to(device)
        self._tensors = [t for node in self._node_list() for _, t in node.tensors()]
        self.optimizer = torch.optim.Adam(self.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
        self._logits_head = problem.loss == "categorical_crossentropy"
        # bf16: the forward pass and loss under autocast (weights, gradients and Adam stay float32,
        # so checkpoints are float32 and transfer as before); evaluation stays float32
        self._autocast = precision == "bf16"

    def _node_list(self) -> Iterable[_Node]:
        return cast(Iterable[_Node], self.nodes)   # a ModuleList types its items as Module; these are _Node

    def forward(self, xs: tuple[torch.Tensor, ...], logits: bool = False) -> torch.Tensor:
        values = dict(zip(self.input_names, xs))
        last = len(self.nodes) - 1
        for k, node in enumerate(self._node_list()):
            args = [values[name] for name in node.layer.inputs]
            values[node.layer.name] = node(*args, final_logits=logits and k == last)
        return values[self.arch.output]

    # -- canonical tensors ----------------------------------------------------------------
    def get_tensors(self) -> list[np.ndarray]:
        out = []
        with torch.no_grad():
            for t in self._tensors:
                a = t.detach()
                if a.dim() >= 2:
                    a = a.permute(*_TO_CANON[a.dim()])
                out.append(np.ascontiguousarray(a.cpu().numpy(), dtype=np.float32))
        return out

    def set_tensors(self, tensors: dict[int, np.ndarray]) -> None:
        with torch.no_grad():
            for i, arr in tensors.items():
                target = self._tensors[i]
                if tuple(arr.shape) != self.specs[i].shape:
                    raise ValueError(f"tensor {i}: shape {arr.shape} does not fit {self.specs[i].shape}")
                src = torch.from_numpy(np.asarray(arr, dtype=np.float32))
                if src.dim() >= 2:
                    src = src.permute(*_TO_TORCH[src.dim()])
                target.copy_(src)

    # -- optimizer state (a promotion continues it: Job.keep_optimizer) --------------------
    def optimizer_state(self) -> tuple[dict, list[np.ndarray]]:
        """Adam's step count and moments per parameter that has them, in `parameters()` order."""
        params = list(self.parameters())
        held = [i for i, p in enumerate(params) if p in self.optimizer.state]
        arrays: list[np.ndarray] = []
        for i in held:
            state = self.optimizer.state[params[i]]
            arrays += [state[k].detach().cpu().numpy().copy() for k in ("exp_avg", "exp_avg_sq")]
        steps = [float(self.optimizer.state[params[i]]["step"]) for i in held]
        return {"kind": "torch-adam", "params": len(params), "held": held, "steps": steps}, arrays

    def load_optimizer_state(self, state: dict, arrays: list[np.ndarray]) -> None:
        params = list(self.parameters())
        held, steps = state.get("held", []), state.get("steps", [])
        if (state.get("kind") != "torch-adam" or state.get("params") != len(params) or len(steps) != len(held)
                or len(arrays) != 2 * len(held)
                or any(arrays[2 * k].shape != tuple(params[i].shape) for k, i in enumerate(held))):
            raise ValueError(f"optimizer state {state.get('kind')!r} does not fit this model")
        for k, i in enumerate(held):
            self.optimizer.state[params[i]] = {
                "step": torch.tensor(float(steps[k])),
                "exp_avg": torch.from_numpy(arrays[2 * k]).to(self.device),
                "exp_avg_sq": torch.from_numpy(arrays[2 * k + 1]).to(self.device)}

    # -- training -------------------------------------------------------------------------
    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        kind = self.problem.loss
        if kind == "categorical_crossentropy":
            loss = F.cross_entropy(out, y)
        elif kind == "mse":
            loss = F.mse_loss(out, y.reshape(out.shape))
        else:
            loss = F.l1_loss(out, y.reshape(out.shape))
        for node in self._node_list():
            if node.l2:
                loss = loss + node.l2 * cast(torch.Tensor, getattr(node.module, "weight")).square().sum()   # Dense/Conv
        return loss

    def train_epoch(self, data: Dataset, seed: int) -> float:
        x, y, _, _ = _device_data(data, self.device, self.problem.loss)
        self.train()
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # dropout
        order = torch.randperm(len(y), generator=gen).to(self.device)
        bs = self.problem.batch_size
        # the epoch's loss is summed on the device and read once: a float() per batch would make
        # the host wait for the GPU after every step
        total, count = torch.zeros((), dtype=torch.float32, device=self.device), 0
        for start in range(0, len(y), bs):
            idx = order[start:start + bs]
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._autocast):
                loss = self._loss(self(tuple(t[idx] for t in x), logits=self._logits_head), y[idx])
            loss.backward()
            self.optimizer.step()
            total += loss.detach().float() * len(idx)
            count += len(idx)
        return float(total) / max(count, 1)

    @torch.no_grad()
    def predict(self, x, batch: int = 1024) -> np.ndarray:
        """Predictions for one input array, or a list/tuple of arrays for multi-input models."""
        self.eval()
        xs = tuple(x) if isinstance(x, (list, tuple)) else (x,)
        xs = tuple(torch.from_numpy(np.asarray(a, dtype=np.float32)).to(self.device) if isinstance(a, np.ndarray)
                   else a for a in xs)
        n = len(xs[0])
        outs = [self(tuple(a[i:i + batch] for a in xs)) for i in range(0, n, batch)]
        return torch.cat(outs).cpu().numpy()

    def native(self, normalization=None) -> nn.Module:
        """This model as a plain `nn.Module` in eval mode (`wtnas_cli.api.load_model`): called as
        `module(*inputs)`, one float32 tensor per input, channels-last (N, ..., C), it returns what
        `predict` does (softmax outputs for classification). With `normalization` (the run's stored
        statistics) it takes raw inputs, as the `.pt2` export does."""
        module: nn.Module = Inference(self)
        if normalization is not None:
            module = Normalized(module, normalization)
        return module.eval()

    @torch.no_grad()
    def evaluate(self, data: Dataset) -> float:
        _, _, xv, yv = _device_data(data, self.device, self.problem.loss)
        pred = in_fitting_batches(lambda batch: self.predict(xv, batch=batch))
        y = yv.cpu().numpy()
        self.last_metrics = extra_metrics(self.problem.loss, pred, y)
        return objective_value(self.problem.objective, pred, y)


_DATA_CACHE: dict[tuple, tuple] = {}


def _device_data(data: Dataset, device: torch.device, loss: str) -> tuple:
    """Convert a dataset to tensors on `device` once per worker."""
    key = (id(data), str(device))
    if key not in _DATA_CACHE:
        ytype = np.int64 if loss == "categorical_crossentropy" else np.float32

        def inputs(x):
            return tuple(torch.from_numpy(np.asarray(a, np.float32)).to(device) for a in as_inputs(x))

        def target(y):
            return torch.from_numpy(np.asarray(y, ytype)).to(device)

        _DATA_CACHE.clear()
        _DATA_CACHE[key] = ((inputs(data.x_train), target(data.y_train), inputs(data.x_val), target(data.y_val)),
                            data)
    return _DATA_CACHE[key][0]


class TorchBackend:
    name = "torch"

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.precision = "fp32"

    def configure(self, *, threads: int | None = None, device: str = "cpu", precision: str = "fp32") -> None:
        self.device = configure_torch(threads=threads, device=device, precision=precision)
        self.precision = precision

    def build(self, problem: Problem, arch: Architecture, seed: int) -> TorchModel:
        torch.manual_seed(seed)
        return TorchModel(problem, arch, self.device, self.precision)
