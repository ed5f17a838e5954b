"""Fuzz targets shared by tests/test_fuzz.py (CI-sized) and benchmarks/fuzz.py (counts inputs).

Each target feeds one malformed input to one parser and accepts exactly two outcomes: a parse,
or that parser's WtnasError. Anything else (another exception, a crash, a hang) is a finding.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from wtnas_cli.weights.checkpoint import CheckpointMeta, CheckpointReader, write_checkpoint
from wtnas_cli.run.config import RunConfig, load_config_file, resolve_config
from wtnas_cli.errors import ArchSeqError, CheckpointError, ConfigError
from wtnas_cli.model.shapes import TensorSpec
from wtnas_cli.model.space import parse_arch_seq

COUNTS = {"config": 0, "arch_seq": 0, "checkpoint": 0}
_TMP = Path(tempfile.mkdtemp(prefix="wtnas-fuzz-"))

# --- config files ----------------------------------------------------------------------------
_keys = st.sampled_from(list(RunConfig.__dataclass_fields__) + ["max-evals", "time-budget", "x", "", "a.b", '"q"'])
_values = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.booleans(),
                    st.text(max_size=20).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
                    st.just("[1, 2]"), st.just("{a = 1}"), st.just("inf"), st.just("nan"), st.just("1979-05-27"))
toml_like = st.lists(st.tuples(_keys, _values).map(lambda kv: f"{kv[0]} = {kv[1]}"), max_size=8).map("\n".join)
config_texts = st.one_of(toml_like, st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")))


def fuzz_config(text: str) -> None:
    COUNTS["config"] += 1
    path = _TMP / "c.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        resolve_config(load_config_file(path))
    except ConfigError:
        pass


# --- architecture sequences -------------------------------------------------------------------
arch_texts = st.one_of(st.text(alphabet="0123456789,[] -x\n\t", max_size=40), st.text(max_size=40),
                       st.lists(st.integers(-5, 50), max_size=14).map(lambda v: ",".join(map(str, v))))


def fuzz_arch_seq(text: str, space) -> None:
    COUNTS["arch_seq"] += 1
    try:
        space.resolve(parse_arch_seq(text))
    except ArchSeqError:
        pass


# --- checkpoints ------------------------------------------------------------------------------
def valid_checkpoint_bytes() -> bytes:
    path = _TMP / "base.h5"
    if not path.exists():
        specs = [TensorSpec("a", "Dense", "kernel", (16, 8)), TensorSpec("a", "Dense", "bias", (8,)),
                 TensorSpec("b", "Conv2D", "kernel", (3, 3, 1, 4))]
        rng = np.random.default_rng(0)
        write_checkpoint(path, CheckpointMeta((1, 2, 3), "digits", "torch", specs, score=0.5),
                         [rng.random(s.shape, dtype=np.float32) for s in specs], durable=False)
    return path.read_bytes()


mutations = st.tuples(st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=20),
                      st.one_of(st.none(), st.floats(0, 1)))


def fuzz_checkpoint(mutation) -> None:
    COUNTS["checkpoint"] += 1
    edits, cut = mutation
    data = bytearray(valid_checkpoint_bytes())
    for pos, byte in edits:
        data[pos % len(data)] = byte
    if cut is not None:
        data = data[: int(len(data) * cut)]
    path = _TMP / "fuzzed.h5"
    path.write_bytes(bytes(data))
    try:
        with CheckpointReader(path) as reader:
            reader.read()
    except CheckpointError:
        pass


random_files = st.binary(max_size=2048)


def fuzz_checkpoint_bytes(data: bytes) -> None:
    COUNTS["checkpoint"] += 1
    path = _TMP / "random.h5"
    path.write_bytes(data)
    try:
        with CheckpointReader(path) as reader:
            reader.read()
    except CheckpointError:
        pass


# --- search-space files -----------------------------------------------------------------------
_op_names = st.sampled_from(["Dense", "Conv1D", "Conv2D", "Identity", "Dropout", "Concatenate", "Dens", "", "x"])
_op_values = st.one_of(st.integers(-3, 70), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                       st.booleans(), st.none(), st.lists(st.integers(-2, 5), max_size=3))
_ops = st.dictionaries(st.sampled_from(["op", "units", "rate", "filters", "kernel_size", "padding", "activation",
                                        "l2", "bogus"]), st.one_of(_op_names, _op_values), max_size=4)
_nodes = st.lists(st.fixed_dictionaries({"name": st.sampled_from(["a", "b", "c", "x", ""])},
                                        optional={"choices": st.lists(_ops, max_size=3), "op": _ops,
                                                  "inputs": st.lists(st.sampled_from(["a", "x", "in", "zz"]),
                                                                     max_size=3)}), max_size=5)
space_docs = st.fixed_dictionaries({}, optional={
    "inputs": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["in", "x"]),
                                              "shape": st.lists(st.integers(-1, 9), max_size=3)}), max_size=2),
    "nodes": _nodes, "loss": st.sampled_from(["mse", "x", "categorical_crossentropy"]),
    "objective": st.sampled_from(["r2", "accuracy", "y"]), "batch_size": _op_values, "bogus": _op_values})


def fuzz_space_file(doc: dict) -> None:
    import yaml

    from wtnas_cli.model.spacefile import SpaceFileError, parse_space

    COUNTS["space_file"] = COUNTS.get("space_file", 0) + 1
    path = _TMP / "space.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        parse_space(path)
    except SpaceFileError:
        pass
