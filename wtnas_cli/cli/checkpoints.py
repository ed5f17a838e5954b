"""`wtnas inspect` and `wtnas match`: look into checkpoints and at what would transfer."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ..model.shapes import format_shape
from .common import console, fmt_score


def inspect_command(
    checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help="A wtnas checkpoint (.h5)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show a checkpoint's metadata and shape sequence (needs no backend)."""
    from ..weights.checkpoint import read_checkpoint_meta

    meta = read_checkpoint_meta(checkpoint)
    if as_json:
        print(json.dumps({
            "path": str(checkpoint), "format_version": meta.format_version, "candidate_id": meta.candidate_id,
            "arch_seq": list(meta.arch_seq), "problem": meta.problem, "backend": meta.backend,
            "score": meta.score, "epochs": meta.epochs, "created": meta.created, "extra": meta.extra,
            "tensors": [s.to_dict() for s in meta.specs]}, indent=2))
        return
    console.print(f"[bold]{checkpoint}[/]  format v{meta.format_version}, wtnas {meta.wtnas_version}")
    console.print(f"candidate {meta.candidate_id}  problem {meta.problem}  backend {meta.backend}  "
                  f"score {fmt_score(meta.score)}  epochs {meta.epochs}")
    console.print(f"arch_seq {list(meta.arch_seq)}", soft_wrap=True)
    if meta.extra:
        console.print("extra " + ", ".join(f"{k}={v}" for k, v in meta.extra.items()))
    table = Table(title=f"shape sequence: {len(meta.specs)} tensors")
    for col in ("#", "layer", "op", "role", "shape", "dtype"):
        table.add_column(col)
    for i, (s, dt) in enumerate(zip(meta.specs, meta.dtypes)):
        table.add_row(str(i), s.layer, s.op, s.role + ("" if s.trainable else " (non-trainable)"),
                      format_shape(s.shape), dt)
    console.print(table)


def match_command(
    provider: Path = typer.Argument(..., metavar="PROVIDER", help="Provider checkpoint (weights come from here)."),
    receiver: Path = typer.Argument(..., metavar="RECEIVER", help="Receiver checkpoint (its shape sequence is matched)."),
    matcher: str = typer.Option("lcs", "--matcher", "-m",
                                help="Matcher plugin: lcs, lp, lcs-slice, lcs-shape, lp-shape, none, ..."),
    as_json: bool = typer.Option(False, "--json", help="Print the mapping as JSON."),
) -> None:
    """Print which provider tensors a matcher maps onto which receiver tensors (whole or partly)."""
    from ..plugins.manager import default_plugins
    from ..weights.checkpoint import read_checkpoint_meta
    from ..weights.matching import apply_matcher, role_class
    from ..weights.transfer import block_slices, plan_stats, spatial_axes

    match = default_plugins().registry.create("matcher", matcher)
    p, r = read_checkpoint_meta(provider), read_checkpoint_meta(receiver)
    pairs = apply_matcher(match, p.specs, r.specs, matcher)
    stats = plan_stats(pairs, p.specs, r.specs)

    def copied(i: int, j: int) -> str:
        if p.specs[i].shape == r.specs[j].shape:
            return "whole"
        _, block = block_slices(p.specs[i].shape, r.specs[j].shape, spatial_axes(r.specs[j]))
        return "block " + "x".join(str(s.stop - s.start) for s in block)

    if as_json:
        print(json.dumps({
            "matcher": matcher, "provider": str(provider), "receiver": str(receiver),
            "provider_tensors": len(p.specs), "receiver_tensors": len(r.specs), "partial": stats.partial,
            "elements": stats.elements, "receiver_elements": stats.receiver_elements, "share": stats.share,
            "role_crossings": stats.role_crossings,
            "pairs": [{"provider_index": i, "receiver_index": j, "shape": list(r.specs[j].shape),
                       "provider_shape": list(p.specs[i].shape), "copied": copied(i, j),
                       "provider_layer": p.specs[i].layer, "receiver_layer": r.specs[j].layer,
                       "provider_role": p.specs[i].role, "receiver_role": r.specs[j].role}
                      for i, j in pairs]}, indent=2))
        return
    table = Table(title=f"{matcher}: {len(pairs)} of {len(r.specs)} receiver tensors from the provider")
    for col in ("#", "provider tensor", "", "#", "receiver tensor", "copied"):
        table.add_column(col)
    for i, j in pairs:
        ps, rs = p.specs[i], r.specs[j]
        cross = role_class(ps.role) != role_class(rs.role)
        table.add_row(str(i), f"{ps.layer}.{ps.role} {format_shape(ps.shape)}", "[red]→ other role[/]" if cross else "→",
                      str(j), f"{rs.layer}.{rs.role} {format_shape(rs.shape)}", copied(i, j))
    console.print(table)
    console.print(f"{stats.elements:,} of {stats.receiver_elements:,} receiver parameters ({stats.share:.1%}) from the "
                  f"provider; {stats.partial} tensors copied partly (overlapping block), {stats.role_crossings} "
                  f"seeded from a tensor of another role")


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_command)
    app.command("match")(match_command)
