"""Malformed input never escapes as anything but a one-line WtnasError (CI-sized fuzzing;
benchmarks/fuzz.py runs the same targets with many more inputs and counts them)."""

from hypothesis import HealthCheck, given, settings

import fuzz_targets as F
from wtnas_builtins.problems.digits import digits_space

SPACE = digits_space()
# derandomized: CI sees the same 300 inputs every time (a test must pass every time); the
# randomized search for new failures with many more inputs is benchmarks/fuzz.py
FAST = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                database=None)


@FAST
@given(F.config_texts)
def test_config_parser(text):
    F.fuzz_config(text)


@FAST
@given(F.arch_texts)
def test_arch_seq_parser(text):
    F.fuzz_arch_seq(text, SPACE)


@FAST
@given(F.mutations)
def test_checkpoint_reader_on_mutated_checkpoints(mutation):
    F.fuzz_checkpoint(mutation)


@FAST
@given(F.random_files)
def test_checkpoint_reader_on_random_bytes(data):
    F.fuzz_checkpoint_bytes(data)


@FAST
@given(F.space_docs)
def test_space_file_parser(doc):
    F.fuzz_space_file(doc)
