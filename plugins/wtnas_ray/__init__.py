"""Ray executor plugin: candidates are Ray tasks. Imports ray only when the executor is created."""

from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.plugins.option import Option


def _create(**options):
    from .executor import RayExecutor

    return RayExecutor(**options)


@hookimpl
def wtnas_register_executors(register):
    register("ray", _create, requires=("ray",), install_hint="pip install 'wtnas[ray]'",
             description="Ray tasks on a local or existing cluster (-o ray.address=HOST:PORT)",
             options=[Option("address", str, None, "address of an existing Ray cluster (alias --ray-address) "
                                                   "[default: start a local one]"),
                      Option("gpus_per_worker", float, 0.0, "GPUs per candidate task (alias --gpus-per-worker)",
                             min=0)])
