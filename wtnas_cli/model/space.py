"""Search spaces: a graph of input, constant and variable nodes; architecture sequences.

A candidate is an *architecture sequence* (arch_seq): one choice index per variable node, in the
order the nodes are declared. Resolving an arch_seq gives an `Architecture`: the concrete layers in
computation-graph order with their inferred shapes and canonical weight tensors, which is all a
backend needs to build the model and all a matcher needs to compare two models.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Sequence

import numpy as np

from ..errors import ArchSeqError, InvalidArchitecture
from .ops import Identity, Merge, Op, Shape, WeightSpec
from .shapes import TensorSpec

ArchSeq = tuple[int, ...]


@dataclass(frozen=True)
class Input:
    name: str
    shape: Shape


@dataclass(frozen=True)
class VariableNode:
    """A node whose operation is chosen by the architecture sequence."""

    name: str
    choices: tuple[Op, ...]
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConstantNode:
    """A node with one fixed operation (e.g. Flatten, the output layer)."""

    name: str
    op: Op
    inputs: tuple[str, ...] = ()


Node = VariableNode | ConstantNode


@dataclass(frozen=True)
class Layer:
    """One resolved node of an architecture."""

    name: str
    op: Op
    inputs: tuple[str, ...]
    input_shape: Shape  # the first input's (the only one but for merges)
    output_shape: Shape
    weights: tuple[WeightSpec, ...]
    input_shapes: tuple[Shape, ...] = ()


@dataclass(frozen=True)
class Architecture:
    """A resolved candidate: layers in computation-graph order."""

    arch_seq: ArchSeq
    inputs: tuple[Input, ...]
    layers: tuple[Layer, ...]
    output: str

    def tensor_specs(self) -> list[TensorSpec]:
        """The shape sequence with provenance, in the canonical order every backend follows."""
        return [TensorSpec(layer.name, layer.op.kind, w.role, w.shape, w.trainable)
                for layer in self.layers for w in layer.weights]

    def shape_sequence(self) -> list[Shape]:
        return [spec.shape for spec in self.tensor_specs()]

    @property
    def num_params(self) -> int:
        return sum(math.prod(w.shape) for layer in self.layers for w in layer.weights)


@dataclass(frozen=True)
class SearchSpace:
    """Inputs plus nodes in topological order; a node without `inputs` reads the node before it."""

    name: str
    inputs: tuple[Input, ...]
    nodes: tuple[Node, ...]
    output: str | None = None
    _variable_index: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self):
        names = [i.name for i in self.inputs] + [n.name for n in self.nodes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"search space {self.name!r}: duplicate node names {dupes}")
        for node in self.variable_nodes:
            if not node.choices:
                raise ValueError(f"search space {self.name!r}: variable node {node.name!r} has no choices")

    @cached_property   # the space is frozen; sampling and mutation ask for these per proposal
    def variable_nodes(self) -> tuple[VariableNode, ...]:
        return tuple(n for n in self.nodes if isinstance(n, VariableNode))

    @cached_property
    def num_choices(self) -> tuple[int, ...]:
        return tuple(len(n.choices) for n in self.variable_nodes)

    @property
    def size(self) -> int:
        """Number of distinct architecture sequences."""
        return math.prod(self.num_choices)

    # -- architecture sequences -------------------------------------------------------------
    def validate(self, arch_seq: Sequence[int]) -> ArchSeq:
        """Return arch_seq as a tuple of ints, or raise ArchSeqError naming what is wrong."""
        counts = self.num_choices
        if type(arch_seq) is tuple and len(arch_seq) == len(counts) and all(
                type(value) is int and 0 <= value < n for value, n in zip(arch_seq, counts)):
            return arch_seq   # the common case (the scheduler's own proposals), checked cheaply
        seq = tuple(arch_seq)
        if len(seq) != len(counts):
            raise ArchSeqError(
                f"arch_seq has {len(seq)} values but search space {self.name!r} has "
                f"{len(counts)} variable nodes; give one choice index per node")
        out = []
        for i, (value, n) in enumerate(zip(seq, counts)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ArchSeqError(f"arch_seq[{i}] = {value!r} is not an integer")
            if not 0 <= value < n:
                node = self.variable_nodes[i].name
                raise ArchSeqError(
                    f"arch_seq[{i}] = {value} is out of range: node {node!r} has {n} choices (0..{n - 1})")
            out.append(int(value))
        return tuple(out)

    # Sampling and mutation retry until the architecture resolves (layers that fit together), so a
    # space where some combinations cannot be built (e.g. too much pooling) wastes no evaluation.
    # After MAX_TRIES the last proposal is returned and fails with its reason when evaluated.
    MAX_TRIES = 1000

    def is_valid(self, arch_seq: Sequence[int]) -> bool:
        try:
            self._resolve_layers(self.validate(arch_seq))
            return True
        except InvalidArchitecture:
            return False

    def sample(self, rng: np.random.Generator) -> ArchSeq:
        for _ in range(self.MAX_TRIES):
            seq = tuple(int(rng.integers(n)) for n in self.num_choices)
            if self.is_valid(seq):
                break
        return seq

    def mutate(self, arch_seq: Sequence[int], rng: np.random.Generator) -> ArchSeq:
        """Change exactly one variable node to a different choice (distance 1)."""
        base = self.validate(arch_seq)
        mutable = self._mutable
        if not mutable:
            raise ArchSeqError(f"search space {self.name!r} has no node with more than one choice")
        for _ in range(self.MAX_TRIES):
            seq = list(base)
            i = mutable[int(rng.integers(len(mutable)))]   # = rng.choice(mutable), the same draws, no array
            new = int(rng.integers(self.num_choices[i] - 1))
            seq[i] = new if new < seq[i] else new + 1
            if self.is_valid(seq):
                break
        return tuple(seq)

    @staticmethod
    def distance(a: Sequence[int], b: Sequence[int]) -> int:
        """d = number of variable nodes whose choice differs."""
        if len(a) != len(b):
            raise ArchSeqError(f"cannot compare arch_seqs of lengths {len(a)} and {len(b)}")
        return sum(x != y for x, y in zip(a, b))

    # -- resolution -------------------------------------------------------------------------
    def resolve(self, arch_seq: Sequence[int]) -> Architecture:
        """Pick each variable node's op and infer every shape (raises InvalidArchitecture)."""
        seq = self.validate(arch_seq)
        last = self.nodes[-1].name if self.nodes else (self.inputs[0].name if self.inputs else None)
        output = self.output or last
        if output is None:
            raise InvalidArchitecture(f"search space {self.name!r} has no inputs and no nodes")
        return Architecture(seq, self.inputs, self._resolve_layers(seq), output)

    def output_units(self) -> int:
        """The output layer's width (its last axis), the same for every arch_seq: the number of
        classes a classifier of this space knows."""
        return int(self.resolve([0] * len(self.variable_nodes)).layers[-1].output_shape[-1])

    def _resolve_layers(self, seq: ArchSeq) -> tuple[Layer, ...]:
        shapes: dict[str, Shape] = {i.name: i.shape for i in self.inputs}
        layers = []
        for position, node, inputs, variable in self._plan:
            choice = seq[variable] if variable >= 0 else -1
            try:
                in_shapes = (shapes[inputs[0]],) if len(inputs) == 1 else tuple([shapes[name] for name in inputs])
            except KeyError:
                missing = [name for name in inputs if name not in shapes]
                raise InvalidArchitecture(f"node {node.name!r} reads {missing}, which no earlier node or input "
                                          f"defines") from None
            key = (position, choice, in_shapes)
            layer = self._layers.get(key)
            if layer is None:
                op = node.choices[choice] if isinstance(node, VariableNode) else node.op
                layer = self._resolve_node(node, op, inputs, in_shapes)
                self._layers[key] = layer
            layers.append(layer)
            shapes[node.name] = layer.output_shape
        return tuple(layers)

    @cached_property
    def _plan(self) -> tuple[tuple[int, Node, tuple[str, ...], int], ...]:
        """Per node: position, node, the names it reads (default: the node before it) and its
        index among the variable nodes (-1 for a constant node), fixed by the space."""
        plan: list[tuple[int, Node, tuple[str, ...], int]] = []
        previous, variable = self.inputs[0].name if self.inputs else None, 0
        for position, node in enumerate(self.nodes):
            inputs = tuple(node.inputs or ((previous,) if previous else ()))
            if isinstance(node, VariableNode):
                plan.append((position, node, inputs, variable))
                variable += 1
            else:
                plan.append((position, node, inputs, -1))
            previous = node.name
        return tuple(plan)

    @cached_property
    def _mutable(self) -> list[int]:
        """Variable nodes with more than one choice (the ones a mutation can change)."""
        return [i for i, n in enumerate(self.num_choices) if n > 1]

    @cached_property
    def _layers(self) -> dict[tuple, Layer]:
        """Resolved layers by (node position, choice, input shapes): a space has few distinct
        ones, and the scheduler resolves every proposal (validity) and every worker every job."""
        return {}

    @staticmethod
    def _resolve_node(node: Node, op: Op, inputs: tuple[str, ...], in_shapes: tuple[Shape, ...]) -> Layer:
        merge = isinstance(op, Merge)
        if (merge and len(inputs) < 2) or (not merge and len(inputs) != 1):
            need = "two or more nodes" if merge else "exactly one node"
            raise InvalidArchitecture(f"node {node.name!r}: {op.label()} reads {need}, got {list(inputs)}")
        try:
            out_shape = op.merge_shape(list(in_shapes)) if isinstance(op, Merge) else op.output_shape(in_shapes[0])
        except InvalidArchitecture as exc:
            raise InvalidArchitecture(f"node {node.name!r}: {exc}") from None
        weights = () if merge else tuple(op.weights(in_shapes[0]))
        return Layer(node.name, op, tuple(inputs), in_shapes[0], out_shape, weights, in_shapes)

    def describe(self, arch_seq: Sequence[int]) -> list[str]:
        """Human-readable op label per variable node."""
        seq = self.validate(arch_seq)
        return [node.choices[c].label() for node, c in zip(self.variable_nodes, seq)]


_ARCH_SEQ_RE = re.compile(r"^\s*\[?\s*(-?\d+(\s*[,\s]\s*-?\d+)*)?\s*\]?\s*$")


def parse_arch_seq(text: str) -> ArchSeq:
    """Parse '1,2,3', '1 2 3' or '[1, 2, 3]' into a tuple of ints."""
    if not _ARCH_SEQ_RE.match(text):
        raise ArchSeqError(f"arch_seq {text!r} is not a list of integers; write it like 0,2,1,3")
    return tuple(int(tok) for tok in re.findall(r"-?\d+", text))


__all__ = ["ArchSeq", "Architecture", "ConstantNode", "Identity", "Input", "Layer", "SearchSpace",
           "VariableNode", "parse_arch_seq"]
