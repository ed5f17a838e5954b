"""Matcher plugins: lp, lcs and none (the baseline), over canonical shape sequences."""

from wtnas_cli.hookspecs import hookimpl
from wtnas_cli.matching import match_lcs, match_lp, match_none


@hookimpl
def wtnas_register_matchers(register):
    register("lp", lambda: match_lp, description="longest common prefix of shape sequences, O(min(n, m))")
    register("lcs", lambda: match_lcs,
             description="longest common subsequence by dynamic programming, O(nm); contains LP's pairs")
    register("none", lambda: match_none, description="transfer nothing: the paper's baseline")
