"""Keras 3 (TensorFlow) backend plugin. Imports TensorFlow only when the backend is created."""

from wtnas_cli.hookspecs import hookimpl


def _create():
    from .backend import KerasBackend

    return KerasBackend()


@hookimpl
def wtnas_register_backends(register):
    register("keras", _create, requires=("tensorflow", "keras"), install_hint="pip install 'wtnas[keras]'",
             description="Keras 3 on TensorFlow: the paper's framework; same shape sequences as torch",
             # TensorFlow keeps ~8 MB per built-and-fitted model even after clear_session():
             # a fresh worker process every 50 candidates bounds a worker's memory
             options={"max_jobs_per_worker": 50})
