"""Regularized evolution as the paper's Algorithm 1: the parent is the best of a random sample
of the population (a tournament), and the population ages (the oldest member leaves first,
however good it is)."""

from math import comb

import numpy as np
import pytest

from wtnas_builtins.strategies import RandomSearch, RegularizedEvolution, island_sizes


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


def _island_run(space, asks=300, seed=0, islands=3, population=12, sample=6):
    """Ask/tell in order, passing each child's parent; returns the strategy, each candidate's
    parent and the told sequence."""
    strategy = RegularizedEvolution(space, seed=seed, population=population, sample=sample, islands=islands)
    rng = np.random.default_rng(seed + 1)
    parents, told = {}, []
    for cid in range(asks):
        proposal = strategy.ask()
        parents[cid] = proposal.parent_id
        score = None if cid % 17 == 5 else float(rng.random())        # some fail
        told.append((cid, proposal.arch_seq, score, proposal.parent_id))
        strategy.tell(cid, proposal.arch_seq, score, parent_id=proposal.parent_id)
    return strategy, parents, told


def _founder(cid, parents):
    while parents[cid] is not None:
        cid = parents[cid]
    return cid


def test_islands_split_the_population_and_never_mix_lineages(small_space):
    """3 islands of 4 (sample 2 each); children alternate islands, join their parent's island, and
    every member of an island descends from that island's own random starts: lineages never mix."""
    strategy, parents, told = _island_run(small_space)
    assert [island.maxlen for island in strategy.islands] == [4, 4, 4]
    assert strategy.island_samples == [2, 2, 2]
    start = {cid: k for k, island in enumerate(_island_run(small_space, asks=13)[0].islands) for cid, _, _ in island}
    assert sorted(start) == [c for c in range(13) if c != 5]   # the random start: 12 successes, 4 per island
    for k, island in enumerate(strategy.islands):
        assert len(island) == 4
        for cid, _, _ in island:
            assert start[_founder(cid, parents)] == k
    assert len({_founder(cid, parents) for cid, _, _ in strategy.population}) >= 3
    children = [cid for cid, _, _, parent in told if parent is not None]
    assert len(children) == 300 - 13
    assert strategy.checkpoints_needed() == {cid for cid, _, _ in strategy.population}


def test_islands_state_follows_from_the_told_results(small_space):
    """A resumed run replays the told results into a fresh strategy: it rebuilds the same islands."""
    strategy, _, told = _island_run(small_space, asks=120)
    replayed = RegularizedEvolution(small_space, seed=99, population=12, sample=6, islands=3)
    for cid, seq, score, parent in told:
        replayed.tell(cid, seq, score, parent_id=parent)
    assert [list(i) for i in replayed.islands] == [list(i) for i in strategy.islands]


def test_a_child_whose_parent_is_unknown_joins_the_smallest_island(small_space):
    strategy = RegularizedEvolution(small_space, seed=0, population=4, sample=2, islands=2)
    rng = np.random.default_rng(4)
    for cid in range(3):
        strategy.tell(cid, small_space.sample(rng), 0.5)
    assert [len(i) for i in strategy.islands] == [2, 1]
    strategy.tell(3, small_space.sample(rng), 0.5, parent_id=12345)   # not a candidate it was told
    assert [len(i) for i in strategy.islands] == [2, 2]


def test_one_island_is_plain_regularized_evolution(small_space):
    """With one island (the default), telling the parent changes nothing: the same asks as the
    three-argument tell. (Checked once against the implementation before islands existed: the
    same asks over 5 seeds x 500 candidates on digits.)"""
    plain = RegularizedEvolution(small_space, seed=3, population=6, sample=3)
    one = RegularizedEvolution(small_space, seed=3, population=6, sample=3, islands=1)
    rng = np.random.default_rng(5)
    for cid in range(60):
        a, b = plain.ask(), one.ask()
        assert a == b
        score = float(rng.random())
        plain.tell(cid, a.arch_seq, score)
        one.tell(cid, b.arch_seq, score, parent_id=b.parent_id)
    assert plain.population == one.population


def test_islands_must_fit_the_population(small_space):
    import pytest

    with pytest.raises(ValueError, match=r"islands \(5\) must be between 1 and population \(4\)"):
        RegularizedEvolution(small_space, population=4, sample=2, islands=5)


def test_islands_keep_their_lineages_apart_in_a_real_search_and_across_resume(tmp_path):
    """A real LCS search (digits, torch) on 2 islands, stopped and resumed: replaying its results
    (as a resume does) puts every candidate on an island, and every inherited weight of every
    candidate goes back to a founder on its own island; the last population holds ≥ 2 lineages."""
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.results.lineage import count_lineages, founders_and_depths
    from wtnas_cli.search.scheduler import run_search
    from wtnas_cli.run.store import RunStore
    from wtnas_cli.search.strategy_protocol import teller

    run_dir = tmp_path / "run"
    common = dict(matcher="lcs", population=4, sample=2, workers=2, run_dir=str(run_dir),
                  options={"evolution": {"islands": 2}})
    run_search(RunConfig(max_evals=10, **common))
    run_search(resume=run_dir, overrides={"max_evals": 18})
    store = RunStore(run_dir / "wtnas.sqlite")
    rows = store.candidates(order="finish_seq")
    store.close()
    assert len(rows) == 18 and all(r["status"] == "ok" for r in rows)
    replay = RegularizedEvolution(None, population=4, sample=2, islands=2)   # tell needs no space
    tell = teller(replay)
    for r in rows:
        tell(r["id"], tuple(r["arch_seq"]), r["score"], r["parent_id"])
    founder, depth = founders_and_depths(rows)
    island = replay._island_of
    inherited = [r for r in rows if r["n_transferred"]]
    assert len(inherited) >= 10 and max(depth.values()) >= 2
    for r in inherited:
        assert r["provider_id"] == r["parent_id"]
        assert island[founder[r["id"]]] == island[r["id"]], r
    assert count_lineages([cid for cid, _, _ in replay.population], founder) >= 2


def test_too_many_islands_is_one_line_before_the_run_starts(tmp_path):
    import pytest
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.errors import ConfigError
    from wtnas_cli.search.scheduler import run_search

    with pytest.raises(ConfigError, match=r"strategy 'evolution': islands \(30\) must be between 1 and population "
                                          r"\(20\) \(its options: population, sample, islands, main_share; "
                                          r"set them with -o"):
        run_search(RunConfig(options={"evolution": {"islands": 30}}, run_dir=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()


def test_a_main_island_breeds_in_proportion_to_its_share(small_space):
    """main_share 0.5 of 12: islands of 6/3/3 that breed children 2:1:1 and still never mix."""
    strategy = RegularizedEvolution(small_space, seed=0, population=12, sample=6, islands=3, main_share=0.5)
    assert [i.maxlen for i in strategy.islands] == [6, 3, 3] and strategy.island_samples == [3, 2, 2]
    rng = np.random.default_rng(1)
    parents, island_of = {}, {}
    for cid in range(212):
        proposal = strategy.ask()
        parents[cid] = proposal.parent_id
        strategy.tell(cid, proposal.arch_seq, float(rng.random()), parent_id=proposal.parent_id)
        island_of[cid] = strategy._island_of[cid]
    start = [cid for cid in range(212) if parents[cid] is None]
    assert [island_of[c] for c in start] == [0, 1, 2, 0, 0, 1, 2, 0, 0, 1, 2, 0]   # least filled first
    bred = [sum(island_of[c] == k for c in range(212) if parents[c] is not None) for k in range(3)]
    assert bred == [100, 50, 50]
    assert all(island_of[_founder(c, parents)] == island_of[c] for c in range(212))


def test_island_sizes_and_their_errors():
    assert island_sizes(20, 3) == [7, 7, 6] and island_sizes(20, 3, 0.5) == [10, 5, 5]
    assert island_sizes(20, 1, 0.5) == [20]
    for share in (1.0, 0.99, 0.01):
        with pytest.raises(ValueError, match="main_share"):
            island_sizes(20, 3, share)
