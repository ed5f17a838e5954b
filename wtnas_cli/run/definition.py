"""What defines a run's candidates beyond run.toml: the space file's content (e.g.
`data.normalize`, a node's choices) and the normalization statistics of its training data.
Kept with the run when it starts; on `--resume` a change is refused (or, forced, recorded as a
new segment), because it would change what a candidate means mid-run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .config import RunConfig
from .store import RunStore


def _space_document(cfg: RunConfig) -> dict | None:
    space = cfg.problem_options().get("space")
    if not space:
        return None
    from ..model.spacefile import read_document

    return json.loads(json.dumps(read_document(Path(space)), sort_keys=True, default=str))


def _flat(value, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_flat(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: value}


def definition_changes(cfg: RunConfig, run_dir: Path, store: RunStore, problem, *, force: bool | None) -> dict:
    """On resume, what changed in the files that define a candidate (the space file's content,
    e.g. data.normalize or a node's choices; the normalization statistics, i.e. the training
    data) since the run was made: {what: [old, new]}. Refused unless `force` (--force-change)."""
    if force is None:
        return {}
    changes: dict[str, list] = {}
    stored_doc, doc = store.get_meta("space_document"), _space_document(cfg)
    if stored_doc is not None and doc is not None and stored_doc != doc:
        before, after = _flat(stored_doc), _flat(doc)
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                changes[f"space file {key}"] = [before.get(key, "(absent)"), after.get(key, "(absent)")]
    from ..model.normalize import load_normalization

    stored_norm, norm = load_normalization(run_dir), getattr(problem, "normalization", None)
    if not changes and stored_norm is not None and norm is not None and stored_norm != norm:
        changes["normalization statistics"] = [stored_norm.method + " of the original data",
                                               norm.method + " of the current data (the data file changed)"]
    if (stored_norm is None and norm is not None and norm.method != "none" and stored_doc is None
            and store.next_id() > 0):   # made before data.normalize existed: its models saw raw data
        changes["data.normalize"] = ["none (the run predates data.normalize; set it to \"none\" to resume)",
                                     norm.method]
    if changes and not force:
        listed = "; ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in list(changes.items())[:3])
        more = f" (and {len(changes) - 3} more)" if len(changes) > 3 else ""
        raise ConfigError(f"--resume: {listed}{more} would change what a candidate is, mid-run ({cfg.space}); "
                          f"start a new run with --run-dir, or add --force-change to record it as a new segment "
                          f"of this run")
    return changes


def record_definition(cfg: RunConfig, run_dir: Path, store: RunStore, problem) -> None:
    """Keep what defines the candidates with the run: the space file's content (checked on
    resume) and the normalization statistics (normalization.json, for exports and resume)."""
    doc = _space_document(cfg)
    if doc is not None:
        store.set_meta("space_document", doc)
    norm = getattr(problem, "normalization", None)
    if norm is not None:
        from ..model.normalize import save_normalization

        save_normalization(run_dir, norm)
