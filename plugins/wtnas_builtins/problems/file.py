"""`file`: a problem defined by the user's search-space file (`wtnas run --space F --data D`)."""

from wtnas_cli.model.data import test_split_option
from wtnas_cli.model.spacefile import file_problem
from wtnas_cli.plugins.hookspecs import hookimpl


@hookimpl
def wtnas_register_problems(register):
    register("file", file_problem, description="your own space: --space FILE.toml|.yaml --data FILE.npz|.h5|.csv",
             traits={"chosen_by": "--space FILE"},
             options=[test_split_option("data.test, the _test arrays, or data.test_fraction, default 0.2")])
