"""Matcher plugins. `lp` and `lcs` compare (role class, shape), so a kernel seeds only a kernel
and a BatchNorm variance only a variance; `lp-shape` and `lcs-shape` are the paper's exact
shape-only rule; `lcs-slice` also copies the overlapping block of same-role tensors whose sizes
differ; `none` is the baseline."""

from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.weights.matching import match_lcs, match_lcs_roles, match_lcs_slice, match_lp, match_lp_roles, match_none

BASELINE = {"baseline": True}  # transfers nothing: a run with it is the no-transfer baseline


@hookimpl
def wtnas_register_matchers(register):
    register("lp", lambda: match_lp_roles,
             description="longest common prefix of (role class, shape) sequences, O(min(n, m))")
    register("lcs", lambda: match_lcs_roles,
             description="longest common subsequence of (role class, shape) sequences, O(nm); contains LP's pairs")
    register("lcs-slice", lambda: match_lcs_slice,
             description="lcs, plus same-role tensors of other sizes between its pairs: copies the overlapping block")
    register("lp-shape", lambda: match_lp,
             description="the paper's LP: longest common prefix of shape sequences (roles ignored)")
    register("lcs-shape", lambda: match_lcs,
             description="the paper's LCS: longest common subsequence of shape sequences (roles ignored)")
    register("none", lambda: match_none, description="transfer nothing: the paper's baseline", traits=BASELINE)
