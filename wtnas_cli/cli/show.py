"""`wtnas show RUN ID`: where one candidate's weights came from, founder to candidate."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import WtnasError
from .common import console


def show_command(
    run: Path = typer.Argument(..., metavar="RUN_DIR", help="A run directory written by `wtnas run`."),
    candidate_id: int = typer.Argument(..., metavar="ID", help="The candidate's id (the `id` column of results.csv)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show a candidate's weight lineage: each provider back to the founder that started from
    random weights, with distance, tensors received (whole / partly) and scores."""
    from ..results.lineage import ancestry, founders_and_depths
    from ..results.runs import load_candidates, load_rungs

    candidates = load_candidates(run)
    ids = {r["id"] for r in candidates}
    if candidate_id not in ids:
        span = f"ids {min(ids)}-{max(ids)}" if ids else "no candidates yet"
        raise WtnasError(f"{run} has no candidate {candidate_id} ({span}); see results.csv for the ids")
    chain = ancestry(candidates, candidate_id)
    founder, _ = founders_and_depths(candidates)
    family = sum(1 for r in candidates if r["status"] == "ok" and founder.get(r["id"]) == chain[0]["id"])
    rungs = load_rungs(run, candidate_id)
    if as_json:
        keys = ("id", "status", "score", "arch_seq", "parent_id", "provider_id", "received_from", "distance",
                "n_transferred", "n_partial", "n_tensors", "transfer_share", "changed_nodes", "num_params")
        print(json.dumps({"candidate": candidate_id, "founder": chain[0]["id"], "depth": len(chain) - 1,
                          "lineage_size": family, "chain": [{k: r.get(k) for k in keys} for r in chain],
                          "rungs": [{k: r[k] for k in ("rung", "epochs", "status", "score", "train_s", "error")}
                                    for r in rungs]}, indent=2))
        return
    table = Table(title=f"weight lineage of candidate {candidate_id} in {escape(str(run))}")
    for col in ("id", "score", "from", "d", "tensors", "params", "changed", "arch_seq"):
        table.add_column(col, overflow="fold", no_wrap=col != "changed")   # numbers and arch_seqs never wrap
    for r in chain:
        score = f"{r['score']:.4f}" if r["score"] is not None else r["status"]
        if r["received_from"] is None:
            received, source, share = "founder", "-", "-"
        else:
            whole = (r["n_transferred"] or 0) - (r["n_partial"] or 0)
            received = f"{whole}+{r['n_partial'] or 0}/{r['n_tensors'] or 0}"
            source, share = str(r["received_from"]), f"{(r['transfer_share'] or 0):.0%}"
        table.add_row(str(r["id"]), score, source, "-" if r["distance"] is None else str(r["distance"]), received,
                      share, ",".join(map(str, r["changed_nodes"])) or "-", ",".join(map(str, r["arch_seq"])))
    console.print(table)
    console.print("tensors: received whole + partly (an overlapping block) / all, params: their share; a founder "
                  "starts from random weights; changed: the nodes that differ from its provider")
    console.print(f"depth {len(chain) - 1}: its inherited tensors go back to candidate {chain[0]['id']}'s random "
                  f"initialization, shared by {family} finished candidate(s) of this run")
    if rungs:
        print_rungs(candidate_id, rungs)


def print_rungs(candidate_id: int, rungs: list[dict]) -> None:
    """A promoting (asha) run's rungs of one candidate: each promotion trained it on from its own
    checkpoint; its score above is its highest rung's."""
    table = Table(title=f"rungs of candidate {candidate_id} (promotions continue its own weights)")
    for col in ("rung", "epochs", "score", "train s"):
        table.add_column(col, no_wrap=True)
    for r in rungs:
        score = f"{r['score']:.4f}" if r["status"] == "ok" else f"{r['status']}: {r['error'] or ''}"
        table.add_row(f"rung {r['rung']}", f"{r['epochs']} epochs", escape(score),
                      "-" if r["train_s"] is None else f"{r['train_s']:.1f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("show")(show_command)
