"""How the report writes numbers: a missing value is '-', shares in percent, ratios as 1.23x."""

from __future__ import annotations

import json
import math


def number(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def share(share: float) -> str:
    return "-" if share is None or math.isnan(share) else f"{share:.0%}"


def ratio(ratio: float) -> str:
    return "-" if ratio is None or math.isnan(ratio) else f"{ratio:.2f}x"


def tau_text(row: dict) -> str:
    return "-" if not row["tau_n"] else f"{number(row['tau'], 3)} (n={row['tau_n']}, {row['tau_over']})"


TOP_RUNG_NOTE = "trained to the top rung by the search"   # (asha) a top-K model counted as trained


def top_rung(trained: dict) -> bool:
    """A top-K model a promoting search trained to its top rung: scored, not trained again."""
    return (trained.get("note") or "").startswith(TOP_RUNG_NOTE)


def converged(trained: dict) -> str:
    """'yes' / 'no (cap)', and 'flat' for a model trained from random weights whose objective
    never rose after its first epoch: early stopping ends it quickly, but that is not a model that
    learned (e.g. one at chance). A warm start may rightly begin at its best."""
    if top_rung(trained):
        return "top rung"
    curve = trained.get("curve") or []
    curve = json.loads(curve) if isinstance(curve, str) else curve
    if not trained.get("warm_started") and len(curve) >= 2 and max(curve[1:]) <= curve[0]:
        return "flat (never beat its first epoch)"
    return "yes" if trained["converged"] else "no (cap)"
