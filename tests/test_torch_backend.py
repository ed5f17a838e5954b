"""The PyTorch backend: canonical layout, exact transfer, determinism (real training on digits)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from wtnas_cli.search.evaluator import Evaluator  # noqa: E402
from wtnas_cli.run.job import Job  # noqa: E402
from wtnas_cli.weights.matching import match_lcs, match_lp  # noqa: E402
from wtnas_builtins.problems.digits import digits_problem  # noqa: E402
from wtnas_torch.backend import TorchBackend  # noqa: E402


@pytest.fixture(scope="module")
def problem():
    return digits_problem()


@pytest.fixture(scope="module")
def backend():
    b = TorchBackend()
    b.configure(threads=1)
    return b


def test_shape_sequence_matches_space(problem, backend):
    rng = np.random.default_rng(0)
    for _ in range(40):
        arch = problem.space.resolve(problem.space.sample(rng))
        model = backend.build(problem, arch, seed=0)
        assert [t.shape for t in model.get_tensors()] == arch.shape_sequence()
        assert model.num_params == sum(p.numel() for p in model.parameters()) + sum(
            b.numel() for b in model.buffers() if b.dtype.is_floating_point)


def test_canonical_layout_of_dense_and_conv(problem, backend):
    arch = problem.space.resolve([4, 0, 1, 3, 0, 0, 1, 0, 0, 0, 0])
    model = backend.build(problem, arch, seed=0)
    tensors = model.get_tensors()
    conv = model.nodes[0].module.weight.detach().numpy()      # torch (out, in, kh, kw)
    assert np.array_equal(tensors[0], conv.transpose(2, 3, 1, 0))
    dense = model.nodes[7].module.weight.detach().numpy()     # torch (out, in)
    assert tensors[4].shape == dense.T.shape and np.array_equal(tensors[4], dense.T)


def test_set_get_round_trip_and_same_predictions(problem, backend):
    arch = problem.space.resolve(problem.space.sample(np.random.default_rng(3)))
    a = backend.build(problem, arch, seed=1)
    a.train_epoch(problem.data(), seed=5)
    b = backend.build(problem, arch, seed=2)
    b.set_tensors(dict(enumerate(a.get_tensors())))
    assert all(np.array_equal(x, y) for x, y in zip(a.get_tensors(), b.get_tensors()))
    x = problem.data().x_val[:50]
    assert np.array_equal(a.predict(x), b.predict(x))


def test_flatten_is_channels_last(problem, backend):
    """Dense after Flatten must see Keras' (h, w, c) order: check against a numpy forward pass."""
    arch = problem.space.resolve([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])  # conv same 8ch, no pooling, no hidden dense
    model = backend.build(problem, arch, seed=0)
    t = model.get_tensors()
    x = problem.data().x_val[:4]
    conv1 = _conv_same(x, t[0], t[1])
    conv2 = _conv_same(np.maximum(conv1, 0), t[2], t[3])
    flat = np.maximum(conv2, 0).reshape(len(x), -1)       # channels-last flatten, as Keras does
    logits = flat @ t[4] + t[5]
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert np.allclose(model.predict(x), expected, atol=1e-5)


def _conv_same(x, kernel, bias):
    k = kernel.shape[0]
    pad = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (pad, k - 1 - pad), (pad, k - 1 - pad), (0, 0)))
    h, w = x.shape[1:3]
    out = np.zeros((len(x), h, w, kernel.shape[-1]), np.float32)
    for i in range(h):
        for j in range(w):
            out[:, i, j, :] = np.einsum("nabc,abcd->nd", xp[:, i:i + k, j:j + k, :], kernel)
    return out + bias


def test_deterministic_under_seed(problem, backend):
    arch = problem.space.resolve(problem.space.sample(np.random.default_rng(4)))
    scores, weights = [], []
    for _ in range(2):
        m = backend.build(problem, arch, seed=11)
        m.train_epoch(problem.data(), seed=3)
        scores.append(m.evaluate(problem.data()))
        weights.append(m.get_tensors())
    assert scores[0] == scores[1]
    assert all(np.array_equal(a, b) for a, b in zip(*weights))


def _job(tmp_path, cid, seq, provider=None, matcher="lcs"):
    return Job(candidate_id=cid, arch_seq=list(seq), problem="digits", backend="torch", matcher=matcher, epochs=1,
               seed=cid, checkpoint_path=str(tmp_path / f"c{cid}.h5"), provider_id=provider,
               provider_checkpoint=str(tmp_path / f"c{provider}.h5") if provider is not None else None)


def test_child_gets_at_least_lp_and_provider_bytes(tmp_path, problem):
    from wtnas_cli.weights.checkpoint import read_checkpoint

    ev = Evaluator(threads=1)
    rng = np.random.default_rng(7)
    space = problem.space
    checked = 0
    for k in range(6):
        parent_seq = space.sample(rng)
        child_seq = space.mutate(parent_seq, rng)
        parent = ev.run(_job(tmp_path, 100 + k, parent_seq))
        assert parent.status == "ok", parent.error
        # evaluate the child with 0 epochs of training would not be a NAS job, so check the copy itself:
        p_meta, p_tensors = read_checkpoint(parent.checkpoint_path)
        arch = space.resolve(child_seq)
        model = ev.backend("torch", "cpu").build(problem, arch, seed=1)
        pairs = match_lcs(p_meta.shape_sequence(), arch.shape_sequence())
        assert len(pairs) >= len(match_lp(p_meta.shape_sequence(), arch.shape_sequence()))
        model.set_tensors({j: p_tensors[i] for i, j in pairs})
        got = model.get_tensors()
        for i, j in pairs:
            assert got[j].tobytes() == p_tensors[i].tobytes()
        checked += len(pairs)
        child = ev.run(_job(tmp_path, 200 + k, child_seq, provider=100 + k))
        assert child.status == "ok" and child.n_transferred == len(pairs)
    assert checked > 0


def test_identical_architecture_transfers_everything(tmp_path, problem):
    ev = Evaluator(threads=1)
    seq = problem.space.sample(np.random.default_rng(9))
    first = ev.run(_job(tmp_path, 1, seq))
    for matcher in ("lp", "lcs"):
        second = ev.run(_job(tmp_path, 2, seq, provider=1, matcher=matcher))
        assert second.status == "ok"
        assert second.n_transferred == second.n_tensors == first.n_tensors


def test_transfer_continues_training(tmp_path, problem):
    """Warm-started from itself, a model scores at least about as well as after its first epoch."""
    ev = Evaluator(threads=1)
    seq = [9, 0, 0, 5, 0, 0, 3, 0, 0, 0, 0]
    first = ev.run(_job(tmp_path, 1, seq))
    assert first.status == "ok"
    scratch = ev.run(_job(tmp_path, 3, seq))
    warm = ev.run(_job(tmp_path, 2, seq, provider=1))
    assert warm.score > scratch.score - 0.01


def test_bad_provider_checkpoint_falls_back_to_scratch(tmp_path, problem):
    ev = Evaluator(threads=1)
    (tmp_path / "c5.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 10)
    result = ev.run(_job(tmp_path, 6, problem.space.sample(np.random.default_rng(1)), provider=5))
    assert result.status == "ok" and result.n_transferred == 0
    assert result.events and "trained from scratch" in result.events[0]


def test_nan_objective_fails_candidate(tmp_path, problem, monkeypatch):
    from wtnas_torch import backend as tb

    monkeypatch.setattr(tb.TorchModel, "evaluate", lambda self, data: float("nan"))
    ev = Evaluator(threads=1)
    job = _job(tmp_path, 1, problem.space.sample(np.random.default_rng(2)))
    result = ev.run(job)
    assert result.status == "failed" and "not finite" in result.error
    assert not (tmp_path / "c1.h5").exists()
