"""Regularized evolution as the paper's Algorithm 1: the parent is the best of a random sample
of the population (a tournament), and the population ages (the oldest member leaves first,
however good it is)."""

from math import comb

import numpy as np

from wtnas_builtins.strategies import RandomSearch, RegularizedEvolution


def _filled(space, population=10, sample=3, seed=0):
    strategy = RegularizedEvolution(space, seed=seed, population=population, sample=sample)
    rng = np.random.default_rng(1)
    seqs = {}
    for cid in range(population):
        seqs[cid] = space.sample(rng)
        strategy.tell(cid, seqs[cid], score=float(cid))   # candidate k has the k-th lowest score
    return strategy, seqs


def test_parent_is_the_best_of_the_tournament_sample(small_space):
    """With population 10 and sample 3 of distinct scores, the parent is the member of rank k
    with probability C(k-1, 2) / C(10, 3): never one of the two worst, and the best only 30% of
    the time (a best-of-population rule would always pick it)."""
    strategy, seqs = _filled(small_space)
    asks = 6000
    counts = np.zeros(10)
    for _ in range(asks):
        proposal = strategy.ask()
        counts[proposal.parent_id] += 1
        assert small_space.distance(seqs[proposal.parent_id], proposal.arch_seq) == 1
    expected = np.array([comb(k, 2) / comb(10, 3) for k in range(10)])
    assert counts[0] == counts[1] == 0
    assert np.abs(counts / asks - expected).max() < 0.025


def test_sample_equal_to_population_always_takes_the_best(small_space):
    strategy, _ = _filled(small_space, population=5, sample=5)
    assert {strategy.ask().parent_id for _ in range(50)} == {4}


def test_the_oldest_member_ages_out_even_when_best(small_space):
    strategy = RegularizedEvolution(small_space, seed=0, population=4, sample=4)
    rng = np.random.default_rng(2)
    strategy.tell(0, small_space.sample(rng), score=0.99)   # the best, and the oldest
    for cid in range(1, 4):
        strategy.tell(cid, small_space.sample(rng), score=0.1 * cid)
    assert strategy.ask().parent_id == 0
    strategy.tell(4, small_space.sample(rng), score=0.05)
    assert [m[0] for m in strategy.population] == [1, 2, 3, 4]
    assert {strategy.ask().parent_id for _ in range(20)} == {3}


def test_failed_candidates_never_join_and_random_start_has_no_parent(small_space):
    strategy = RegularizedEvolution(small_space, seed=0, population=3, sample=2)
    rng = np.random.default_rng(3)
    for cid in range(3):
        assert strategy.ask().parent_id is None          # random start: no parent to inherit from
        strategy.tell(cid, small_space.sample(rng), score=None if cid == 1 else 0.5)
    assert [m[0] for m in strategy.population] == [0, 2]
    assert strategy.ask().parent_id is None               # still filling: 2 of 3
    assert RandomSearch(small_space).ask().parent_id is None
