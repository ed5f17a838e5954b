"""Keras 3 backend plugin: `keras` (Keras 3 on PyTorch) and `keras-tensorflow` (on TensorFlow, the
paper's engine), and the `keras` format of `wtnas export`. Imports Keras and its engine only when
a backend or the exporter is created."""

from wtnas_cli.plugins.hookspecs import hookimpl

PRECISIONS = ("fp32", "tf32", "bf16")   # --precision values both engines train in (engines.py)


def _factory(engine: str, name: str):
    def create():
        from .backend import KerasBackend

        return KerasBackend(engine, name)

    return create


@hookimpl
def wtnas_register_backends(register):
    register("keras", _factory("torch", "keras"), requires=("keras", "torch"),
             install_hint="pip install 'wtnas[keras]'",
             description="Keras 3 on PyTorch: Keras layers, initializers and Adam at close to torch speed; "
                         "same shape sequences and checkpoints as torch",
             traits={"precisions": PRECISIONS})
    register("keras-tensorflow", _factory("tensorflow", "keras-tensorflow"), requires=("keras", "tensorflow"),
             install_hint="pip install 'wtnas[keras-tensorflow]'",
             description="Keras 3 on TensorFlow, the paper's engine: ~1 s of graph tracing per candidate",
             # TensorFlow keeps ~2.4 MB per built-and-trained model even after clear_session()
             # (docs/benchmarks.md, Keras speed): a fresh worker every 50 candidates bounds it
             traits={"max_jobs_per_worker": 50, "precisions": PRECISIONS})


def _exporter():
    from .exporter import KerasExporter

    return KerasExporter()


@hookimpl
def wtnas_register_export_formats(register):
    register("keras", _exporter, requires=("keras", "torch"), install_hint="pip install 'wtnas[keras]'",
             description="Keras 3 model (.keras): keras.saving.load_model(path), any Keras engine")
