"""PyTorch backend plugin, and the `torch` and `onnx` formats of `wtnas export`. Imports torch
only when the backend or an exporter is created."""

from wtnas_cli.plugins.hookspecs import hookimpl

INSTALL_HINT = "pip install 'wtnas[torch]'  (CPU build: pip install torch==2.13.0)"


def _create():
    from .backend import TorchBackend

    return TorchBackend()


def _exporter(name: str):
    def create():
        from . import exporter

        return getattr(exporter, name)()

    return create


@hookimpl
def wtnas_register_backends(register):
    register("torch", _create, requires=("torch",), install_hint=INSTALL_HINT,
             description="PyTorch: builds every built-in op, canonical (Keras) tensor layout",
             traits={"precisions": ("fp32", "tf32", "bf16")})


@hookimpl
def wtnas_register_export_formats(register):
    register("torch", _exporter("TorchExporter"), requires=("torch",), install_hint=INSTALL_HINT,
             description="PyTorch program (.pt2, torch.export): torch.export.load(path).module()")
    register("onnx", _exporter("OnnxExporter"), requires=("torch", "onnx", "onnxscript", "onnxruntime"),
             install_hint="pip install 'wtnas[torch,export]'",
             description="ONNX (.onnx, via torch.export), checked with onnxruntime")
