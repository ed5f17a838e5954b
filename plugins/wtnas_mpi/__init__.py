"""MPI executor plugin (`mpiexec -n N wtnas run --executor mpi`). Importing mpi4py initializes
MPI, so this module imports it only when the executor is created."""

from wtnas_cli.plugins.hookspecs import hookimpl


def _create(**options):
    from .executor import MPIExecutor

    return MPIExecutor(**options)


@hookimpl
def wtnas_register_executors(register):
    register("mpi", _create, requires=("mpi4py",), install_hint="pip install 'wtnas[mpi]'",
             description="under mpiexec: rank 0 schedules, ranks 1..N-1 evaluate")
