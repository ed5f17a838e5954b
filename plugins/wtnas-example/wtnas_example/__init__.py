"""wtnas-example: registers the `spirals` problem and the `best-nearby` selector."""

from __future__ import annotations

import numpy as np

from wtnas_cli.contracts import (ConstantNode, Dataset, Input, Option, Problem, SearchSpace, VariableNode, hookimpl,
                                  split)
from wtnas_cli.contracts import ops as O


def spirals_data(n: int = 1200, noise: float = 0.15, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.random(n)) * 3 * np.pi
    y = rng.integers(0, 2, n)
    sign = np.where(y == 1, 1.0, -1.0)
    x = np.column_stack([sign * t * np.cos(t), sign * t * np.sin(t)]) / (3 * np.pi)
    x += rng.normal(0, noise / 3, x.shape)
    return split([x.astype(np.float32)], y.astype(np.int64))


def spirals_problem(**_) -> Problem:
    layer = (O.Identity(),) + tuple(O.Dense(u, activation=a) for u in (16, 32, 64) for a in ("relu", "tanh"))
    space = SearchSpace("spirals", (Input("xy", (2,)),), (
        VariableNode("h1", layer), VariableNode("h2", layer), VariableNode("h3", layer),
        VariableNode("drop", (O.Identity(), O.Dropout(0.1))),
        ConstantNode("out", O.Dense(2, activation="softmax")),
    ))
    return Problem("spirals", space, spirals_data, batch_size=32, min_delta=0.005,
                   description="two interleaved spirals (wtnas-example plugin)")


class BestNearbySelector:
    """Provider = the best-scoring checkpointed candidate within distance `max_distance` of the
    proposal (the paper finds transfer helps most at small d); none if nobody is that close.
    `max_distance` is an option: `wtnas run -o best-nearby.max_distance=1`."""

    def __init__(self, space, max_distance: int = 2):
        self.max_distance = max_distance
        self.seqs: list[tuple[int, ...]] = []
        self.ids: list[int] = []
        self.scores: list[float] = []

    def observe(self, candidate_id, arch_seq, score, has_checkpoint):
        if score is not None and has_checkpoint:
            self.ids.append(candidate_id)
            self.seqs.append(tuple(arch_seq))
            self.scores.append(score)

    def select(self, proposal):
        if not self.ids:
            return None
        dist = (np.array(self.seqs) != np.array(proposal.arch_seq)).sum(axis=1)
        near = np.flatnonzero(dist <= self.max_distance)
        if not len(near):
            return None
        return self.ids[int(near[np.argmax(np.array(self.scores)[near])])]


@hookimpl
def wtnas_register_problems(register):
    register("spirals", spirals_problem, description="two interleaved spirals, dense space (example plugin)")


@hookimpl
def wtnas_register_selectors(register):
    register("best-nearby", BestNearbySelector,
             description="best-scoring checkpointed candidate within distance d (example plugin)",
             options=[Option("max_distance", int, 2, "farthest provider, in changed variable nodes", min=0)])
