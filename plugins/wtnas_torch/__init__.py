"""PyTorch backend plugin. Imports torch only when the backend is created."""

from wtnas_cli.hookspecs import hookimpl


def _create():
    from .backend import TorchBackend

    return TorchBackend()


@hookimpl
def wtnas_register_backends(register):
    register("torch", _create, requires=("torch",),
             install_hint="pip install 'wtnas[torch]'  (CPU build: pip install torch==2.13.0)",
             description="PyTorch: builds every built-in op, canonical (Keras) tensor layout")
