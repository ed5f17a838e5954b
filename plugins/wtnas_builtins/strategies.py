"""Search strategies: regularized evolution (the paper's, Algorithm 1) and random search.

A strategy proposes architecture sequences (`ask`) and learns from scores (`tell`). Its whole
state is derived from the told results in order, so a resumed run rebuilds it by replaying them.
"""

from __future__ import annotations

from collections import OrderedDict, deque
import numpy as np

from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.plugins.option import Option
from wtnas_cli.model.space import ArchSeq, SearchSpace
from wtnas_cli.search.strategy_protocol import Proposal

from .asha import ASHA_OPTIONS, SuccessiveHalving


class RegularizedEvolution:
    """Population of the N most recent successful candidates (aging); a child is a one-node
    mutation of the best of S candidates sampled from it, so parent and child are at d = 1.

    With `islands` I > 1 the population is split into I islands that evolve side by side
    (sizes and sample sizes split N and S in proportion; `main_share` gives the first island that
    share of N and the others the rest evenly): children are bred on the islands in proportion to
    their sizes (the island that has bred the fewest per member goes next) and join their parent's
    island; a candidate without a parent (the random start) joins the least filled island. A main
    island keeps most of the search on one population while the satellites keep other lineages
    alive. Nothing migrates, so with parent transfer each island keeps its own weight lineage: the
    top-K can then hold several trained lineages instead of one (under I = 1 every lineage but
    one dies out; results/lineage.py)."""

    #: island of a recently told candidate, kept for this many (a child told after its parent
    #: aged out still finds the island; memory stays flat over long runs)
    ISLAND_MEMORY = 50_000

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 20, sample: int = 10,
                 islands: int = 1, main_share: float = 0.0, **_):
        if not 1 <= sample <= population:
            raise ValueError(f"sample ({sample}) must be between 1 and population ({population})")
        if not 1 <= islands <= population:
            raise ValueError(f"islands ({islands}) must be between 1 and population ({population})")
        self.space = space
        self.population_size = population
        self.sample_size = sample
        self.rng = np.random.default_rng(seed)
        self.island_sizes = island_sizes(population, islands, main_share)
        self.islands: list[deque[tuple[int, ArchSeq, float]]] = [deque(maxlen=n) for n in self.island_sizes]
        # S shared out in proportion, but a tournament of at least 2 where an island has 2 members
        # (a tournament of one is a random parent: no selection at all)
        self.island_samples = [min(n, max(2, round(sample * n / population))) if islands > 1 else sample
                               for n in self.island_sizes]
        self._island_of: OrderedDict[int, int] = OrderedDict()
        self._bred = [0] * islands   # children bred per island

    @property
    def population(self) -> list[tuple[int, ArchSeq, float]]:
        """Every member, island by island, oldest first within an island."""
        return [m for island in self.islands for m in island]

    def ask(self) -> Proposal:
        if sum(map(len, self.islands)) < self.population_size:   # the random start
            return Proposal(self.space.sample(self.rng))
        # the non-empty island that has bred the fewest children per member (one whose random
        # start all failed is skipped; equal islands take turns); with one island this is the
        # whole population and its tournament S
        k = min((i for i, isl in enumerate(self.islands) if isl), key=lambda i: self._bred[i] / self.island_sizes[i])
        self._bred[k] += 1
        island, sample = self.islands[k], min(self.island_samples[k], len(self.islands[k]))
        picks = self.rng.choice(len(island), size=sample, replace=False)
        parent_id, parent_seq, _ = max((island[int(i)] for i in picks), key=lambda m: m[2])
        return Proposal(self.space.mutate(parent_seq, self.rng), parent_id)

    def tell(self, candidate_id: int, arch_seq: ArchSeq, score: float | None,
             parent_id: int | None = None) -> None:
        if score is None:  # failed candidates never join the population
            return
        if len(self.islands) == 1:
            k = 0             # (nothing to remember: memory stays flat on the default path)
        else:
            k = self._island_of.get(parent_id, -1) if parent_id is not None else -1
            if k < 0:   # the least filled island (equal islands: the smallest)
                k = min(range(len(self.islands)), key=lambda i: len(self.islands[i]) / self.island_sizes[i])
            self._island_of[candidate_id] = k
            if len(self._island_of) > self.ISLAND_MEMORY:
                self._island_of.popitem(last=False)
        self.islands[k].append((candidate_id, tuple(arch_seq), float(score)))

    def checkpoints_needed(self) -> set[int]:
        """Parents come from the populations only: older candidates can never provide again."""
        return {cid for island in self.islands for cid, _, _ in island}


def island_sizes(population: int, islands: int, main_share: float = 0.0) -> list[int]:
    """Members per island: an even split of N, or with `main_share` > 0 that share of N (rounded)
    on the first island and the rest split evenly over the others."""
    if not main_share or islands == 1:
        return [population // islands + (i < population % islands) for i in range(islands)]
    if not 0 < main_share < 1:
        raise ValueError(f"main_share ({main_share}) must be between 0 and 1 (0: equal islands)")
    main = round(population * main_share)
    rest = population - main
    if main < 1 or rest < islands - 1:
        raise ValueError(f"main_share ({main_share}) leaves an island of population {population} without members: "
                         f"use a share between {1 / population:.2f} and {1 - (islands - 1) / population:.2f}")
    return [main] + [rest // (islands - 1) + (i < rest % (islands - 1)) for i in range(islands - 1)]


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
                                  "are random samples); unset, min(20, max(4, max_evals // 5)), so that a small "
                                  "budget transfers (sample shrinks with it)", min=1),
    Option("sample", int, 10, "sample size S: a child mutates the best of S members drawn from the population "
                              "(at most N)", min=1),
    Option("islands", int, 1, "split the population into this many islands that evolve apart (N and S are "
                              "shared out); with parent transfer each keeps its own weight lineage", min=1),
    Option("main_share", float, 0.0, "with islands: the first island's share of N (and of the children), the "
                                     "others split the rest; 0 = equal islands", min=0.0),
)


@hookimpl
def wtnas_register_strategies(register):
    register("evolution", RegularizedEvolution,
             description="regularized evolution (aging, population N, sample S, one-node mutation)",
             traits={"proposes_parents": True, "random_start": "population",
                     "random_start_bounds": ("sample", "islands"), "default_selector": "parent"},
             options=EVOLUTION_OPTIONS)
    register("asha", SuccessiveHalving,
             description="asynchronous successive halving: the top 1/eta of each rung is trained on (promoted) "
                         "from its own checkpoint; new candidates are random samples that receive weights",
             traits={"proposes_parents": False, "default_selector": "nearest"}, options=ASHA_OPTIONS)
    register("random", RandomSearch, description="uniform random sampling of the search space",
             traits={"proposes_parents": False, "default_selector": "nearest"})
