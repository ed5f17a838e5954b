"""Names shared by the benchmark scripts: the schemes compared and what transfer adds per candidate."""

SCHEMES = ("none", "lp", "lcs")                      # matcher names; none = the baseline
LABEL = {"none": "baseline", "lp": "LP", "lcs": "LCS"}
TRANSFER_KEYS = ("ckpt_read_s", "match_s", "copy_s")  # the timings a candidate has only when it receives weights
