"""Search strategies: regularized evolution (the paper's, Algorithm 1) and random search.

A strategy proposes architecture sequences (`ask`) and learns from scores (`tell`). Its whole
state is derived from the told results in order, so a resumed run rebuilds it by replaying them.
"""

from __future__ import annotations

from collections import deque
import numpy as np

from wtnas_cli.hookspecs import hookimpl
from wtnas_cli.options import Option
from wtnas_cli.space import ArchSeq, SearchSpace
from wtnas_cli.strategy import Proposal


class RegularizedEvolution:
    """Population of the N most recent successful candidates (aging); a child is a one-node
    mutation of the best of S candidates sampled from it, so parent and child are at d = 1."""

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 20, sample: int = 10, **_):
        if not 1 <= sample <= population:
            raise ValueError(f"sample ({sample}) must be between 1 and population ({population})")
        self.space = space
        self.population_size = population
        self.sample_size = sample
        self.rng = np.random.default_rng(seed)
        self.population: deque[tuple[int, ArchSeq, float]] = deque(maxlen=population)

    def ask(self) -> Proposal:
        if len(self.population) < self.population_size:
            return Proposal(self.space.sample(self.rng))
        picks = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
        parent_id, parent_seq, _ = max((self.population[int(i)] for i in picks), key=lambda m: m[2])
        return Proposal(self.space.mutate(parent_seq, self.rng), parent_id)

    def tell(self, candidate_id: int, arch_seq: ArchSeq, score: float | None) -> None:
        if score is not None:  # failed candidates never join the population
            self.population.append((candidate_id, tuple(arch_seq), float(score)))

    def checkpoints_needed(self) -> set[int]:
        """Parents come from the population only: older candidates can never provide again."""
        return {cid for cid, _, _ in self.population}


class RandomSearch:
    def __init__(self, space: SearchSpace, seed: int = 0, **_):
        self.space = space
        self.rng = np.random.default_rng(seed)

    def ask(self) -> Proposal:
        return Proposal(self.space.sample(self.rng))

    def tell(self, candidate_id: int, arch_seq: ArchSeq, score: float | None) -> None:
        pass

    def checkpoints_needed(self) -> set[int]:
        return set()   # proposes no parents


# the options of regularized evolution (a strategy built on it declares them too)
EVOLUTION_OPTIONS = (
    Option("population", int, 20, "population size N: the N most recent successful candidates (the first N "
                                  "are random samples)", min=1),
    Option("sample", int, 10, "sample size S: a child mutates the best of S members drawn from the population "
                              "(at most N)", min=1),
)


@hookimpl
def wtnas_register_strategies(register):
    register("evolution", RegularizedEvolution,
             description="regularized evolution (aging, population N, sample S, one-node mutation)",
             traits={"proposes_parents": True, "random_start": "population", "default_selector": "parent"},
             options=EVOLUTION_OPTIONS)
    register("random", RandomSearch, description="uniform random sampling of the search space",
             traits={"proposes_parents": False, "default_selector": "nearest"})
