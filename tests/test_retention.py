"""Bounded disk (retention.py): checkpoints nothing can need are deleted, and the search is the
same search as with every checkpoint kept."""

import sqlite3
from pathlib import Path

import pytest

from wtnas_cli.run.retention import Retention


class _Needs:
    def __init__(self, ids):
        self.ids = ids

    def checkpoints_needed(self):
        return set(self.ids)


def test_retention_keeps_what_components_jobs_top_and_reservoir_need():
    r = Retention(keep_top=2, tau_reserve=3, seed=1)
    for cid in range(20):
        r.observe(cid, score=cid / 100 if cid != 7 else 0.99, has_checkpoint=True)
    r.observe(20, None, False)                                   # failed: nothing to keep or sample
    assert len(r.reservoir) == 3 and len(set(r.reservoir)) == 3
    again = Retention(keep_top=2, tau_reserve=3, seed=1)
    for cid in range(20):
        again.observe(cid, score=0.5, has_checkpoint=True)
    assert again.reservoir == r.reservoir                        # replay on resume draws the same sample
    r.hold(3)
    r.hold(3)
    r.release(3)
    gone = r.deletable([_Needs({0, 1}), _Needs(set())])
    keep = {0, 1, 3, 7, 19, *r.reservoir}                        # components, in flight, top 2, reservoir
    assert set(gone) == set(range(20)) - keep
    r.release(3)
    assert 3 not in r.in_use                                     # the counter stays as small as the jobs in flight
    for cid in (7, 19):
        r.dropped(cid)
    assert set(r.deletable([_Needs({0, 1})])) == set(range(20)) - {7, 19} - {0, 1, 17, 18, *r.reservoir}   # next best
    assert r.deletable([_Needs({0}), object()]) == []            # a component that does not say: keep all
    assert Retention(keep="all").deletable([]) == []


def test_deletable_is_the_plain_set_definition_under_random_churn():
    """The top and reservoir sets kept as candidates arrive and go give exactly what the plain
    definition gives (kept − components' needs − in flight − top keep_top by score − reservoir),
    with tied scores, drops inside and outside the top, and a top larger than what is kept."""
    import numpy as np

    rng = np.random.default_rng(3)
    for keep_top in (0, 1, 5, 40):
        r = Retention(keep_top=keep_top, tau_reserve=4, seed=2)
        for cid in range(300):
            score = float(rng.integers(0, 20)) / 20 if rng.random() < 0.9 else None   # ties; some failures
            r.observe(cid, score, has_checkpoint=score is not None and rng.random() < 0.8)
            if rng.random() < 0.3 and r.kept:
                r.hold(int(rng.choice(list(r.kept))))
            if rng.random() < 0.2 and r.in_use:
                r.release(next(iter(r.in_use)))
            needs = _Needs({int(c) for c in rng.choice(cid + 1, size=3)})
            ranked = sorted(r.kept, key=lambda c: (-r.kept[c], c))
            plain = set(r.kept) - needs.ids - set(r.in_use) - set(ranked[:keep_top]) - set(r.reservoir)
            gone = r.deletable([needs])
            assert gone == sorted(plain), (keep_top, cid)
            for c in gone[:int(rng.integers(0, len(gone) + 1))]:
                r.dropped(c)
            if rng.random() < 0.05 and ranked:         # a drop the definition did not allow (a cap would)
                r.dropped(ranked[0])


def test_a_cap_bounds_selectors_that_may_use_any_checkpoint(plugins):
    from wtnas_cli.search.strategy_protocol import Proposal

    space = plugins.registry.create("problem", "digits").space
    nearest = plugins.registry.create("selector", "nearest", space)
    r = Retention(keep_top=2, tau_reserve=1, seed=0, max_checkpoints=5)
    seqs = {}
    for cid in range(10):
        seqs[cid] = tuple(space.sample(__import__("numpy").random.default_rng(cid)))
        nearest.observe(cid, seqs[cid], cid / 10, True)
        r.observe(cid, cid / 10, True)
    assert Retention(keep_top=2, tau_reserve=1).deletable([nearest]) == []     # no cap: keep all
    gone = r.deletable([nearest])
    assert len(gone) == 5 and {8, 9, *r.reservoir}.isdisjoint(gone)            # lowest scores go first
    assert gone == sorted(c for c in range(10) if c not in {8, 9, *r.reservoir})[:5]
    for cid in gone:
        nearest.forget(cid)
        r.dropped(cid)
    for cid in gone:                                                             # never chosen again
        assert nearest.select(Proposal(seqs[cid])) not in gone


def test_nearest_is_the_brute_force_nearest_after_growth_and_forgetting(plugins):
    """The selector's buffers (grown past their first size, rows shifted by forget) give what a
    scan of every remaining candidate gives: least d, then best score, then oldest."""
    import numpy as np
    from wtnas_cli.search.strategy_protocol import Proposal

    space = plugins.registry.create("problem", "digits").space
    nearest = plugins.registry.create("selector", "nearest", space)
    rng = np.random.default_rng(7)
    known = {}
    for cid in range(300):
        seq, score = space.sample(rng), float(rng.integers(0, 5)) / 4       # many ties
        nearest.observe(cid, seq, score, True)
        known[cid] = (seq, score)
    nearest.observe(300, space.sample(rng), None, False)                       # failed: never a provider
    for cid in rng.choice(300, size=120, replace=False):
        nearest.forget(int(cid))
        del known[int(cid)]
    for _ in range(100):
        seq = space.sample(rng)
        want = min(known, key=lambda c: (space.distance(known[c][0], seq), -known[c][1], c))
        assert nearest.select(Proposal(seq)) == want


@pytest.mark.slow
def test_keep_needed_bounds_disk_and_changes_nothing_else(tmp_path):
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.results.report import write_report
    from wtnas_cli.search.scheduler import run_search
    from wtnas_cli.results.topk import TopKConfig, run_topk

    common = dict(max_evals=40, population=6, sample=3, workers=1, seed=5, keep_top=3, tau_reserve=4)
    run_search(RunConfig(run_dir=str(tmp_path / "all"), keep="all", **common))
    run_search(RunConfig(run_dir=str(tmp_path / "needed"), **common))

    def rows(name):
        con = sqlite3.connect(tmp_path / name / "wtnas.sqlite")
        con.row_factory = sqlite3.Row
        out = [dict(r) for r in con.execute("SELECT * FROM candidates ORDER BY id")]
        con.close()
        return out
    full, bounded = rows("all"), rows("needed")
    key = lambda r: (r["arch_seq"], r["provider_id"], r["parent_id"], r["status"], r["score"])
    assert [key(r) for r in full] == [key(r) for r in bounded]      # the same search, byte for byte
    on_disk = sorted((tmp_path / "needed" / "checkpoints").glob("*.h5"))
    referenced = [r for r in bounded if r["checkpoint"]]
    assert sorted(Path(r["checkpoint"]) for r in referenced) == on_disk
    assert len(on_disk) <= 6 + 3 + 4 + 1                             # population + top + reserve + workers
    assert sum(r["checkpoint_deleted"] or 0 for r in bounded) == 40 - len(on_disk) > 0
    assert len(list((tmp_path / "all" / "checkpoints").glob("*.h5"))) == 40

    warm = run_topk(tmp_path / "needed", TopKConfig(k=3, max_epochs=2, workers=1, tau_sample=3, verify=False,
                                                    min_distance=1, max_per_lineage=0))
    assert all(r["warm_started"] for r in warm.rows if r["in_topk"])  # the top-K's checkpoints were kept
    assert any("reserved uniform sample" in n for n in warm.notes)
    md = write_report([tmp_path / "needed"])[0].read_text()
    assert f"checkpoints kept {len(on_disk)} of 40" in md

    # a deletion a crash interrupted (marked, file still there) is finished on resume
    stray = next(r for r in bounded if r["checkpoint_deleted"])
    stray_path = tmp_path / "needed" / "checkpoints" / f"c{stray['id']:05d}.h5"
    stray_path.write_bytes(b"left behind")
    run_search(resume=tmp_path / "needed", overrides={"max_evals": 41})
    assert not stray_path.exists()


def test_a_job_carries_committed_deletions_and_its_worker_removes_them(tmp_path, plugins):
    """The scheduler marks checkpoints deleted in its store; the next job's worker removes the
    files (file-system work off the scheduler); one that cannot be removed is left for resume."""
    from wtnas_cli.search.evaluator import Evaluator
    from wtnas_cli.run.job import Job

    doomed = [tmp_path / f"c{i:05d}.h5" for i in range(3)]
    for path in doomed:
        path.write_bytes(b"x")
    space = plugins.registry.create("problem", "digits").space
    job = Job(candidate_id=9, arch_seq=list(space.sample(__import__("numpy").random.default_rng(0))),
              problem="digits", backend="torch", matcher="lcs", epochs=0, seed=1,
              checkpoint_path=str(tmp_path / "c00009.h5"), write_checkpoint=False,
              remove_checkpoints=[str(p) for p in doomed] + [str(tmp_path / "already-gone.h5")])
    assert Job.from_dict(job.to_dict()).remove_checkpoints == job.remove_checkpoints   # survives the pipe
    Evaluator(plugins).run(job)
    assert not any(p.exists() for p in doomed)


def test_store_transactions_nest_and_roll_back_as_one(tmp_path):
    from wtnas_cli.run.store import RunStore

    store = RunStore(tmp_path / "s.sqlite")
    with store.transaction():
        store.set_meta("a", 1)
        with store.transaction():
            store.set_meta("b", 2)
        assert store.db.in_transaction                     # the inner block did not commit
    assert (store.get_meta("a"), store.get_meta("b")) == (1, 2)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.set_meta("c", 3)
            with store.transaction():
                store.set_meta("d", 4)
                raise RuntimeError("boom")
    assert (store.get_meta("c"), store.get_meta("d")) == (None, None) and not store.db.in_transaction
    with pytest.raises(KeyboardInterrupt):                 # Ctrl-C keeps what was stored
        with store.transaction():
            store.set_meta("k", 6)
            raise KeyboardInterrupt
    assert store.get_meta("k") == 6 and not store.db.in_transaction
    with store.transaction():                              # usable again after a rollback
        store.set_meta("e", 5)
    assert RunStore(tmp_path / "s.sqlite").get_meta("e") == 5


class _InProcess:
    """An executor that runs jobs in this process (the Executor protocol, for pump's ordering)."""

    capacity = 2

    def __init__(self, log):
        self.log, self.running = log, []

    def submit(self, job):
        self.log.append(("submit", job))
        self.running.append(job)

    def poll(self, timeout):
        done, self.running = self.running[:1], self.running[1:]
        return done


def test_pump_submits_a_batch_s_jobs_only_after_the_batch_closed():
    from contextlib import contextmanager

    from wtnas_cli.search.pump import pump

    log, queue = [], list(range(5))

    @contextmanager
    def batch():
        log.append("begin")
        yield
        log.append("commit")

    def next_job():
        if queue:
            log.append(("made", queue[0]))
            return queue.pop(0)
        return None

    pump(_InProcess(log), next_job, lambda r: log.append(("result", r)), batch=batch)
    for job in range(5):
        made, submitted = log.index(("made", job)), log.index(("submit", job))
        assert "commit" in log[made:submitted]               # made inside a batch, submitted after it
    assert [e for e in log if isinstance(e, tuple) and e[0] == "result"] == [("result", j) for j in range(5)]
    assert log.count("begin") == log.count("commit") == 6    # the first fill + one per poll
