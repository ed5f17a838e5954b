"""Ray executor plugin: candidates are Ray tasks. Imports ray only when the executor is created."""

from wtnas_cli.hookspecs import hookimpl


def _create(**options):
    from .executor import RayExecutor

    return RayExecutor(**options)


@hookimpl
def wtnas_register_executors(register):
    register("ray", _create, requires=("ray",), install_hint="pip install 'wtnas[ray]'",
             description="Ray tasks on a local or existing cluster (--ray-address, --gpus-per-worker)")
