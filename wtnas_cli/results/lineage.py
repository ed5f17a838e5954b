"""Where a candidate's weights came from: its weight lineage.

A candidate that received tensors carries its provider's training, and the provider carries its
own provider's. Following the providers that actually transferred something back to the first
candidate that started from random weights gives the chain; that random-weight candidate is the
chain's *founder*. Two candidates with the same founder share a lineage: every inherited tensor
of both goes back to one random initialization. (A candidate that inherited nothing founds its
own lineage.) `depth` is the number of providers in the chain: 0 for a founder.

This is what "the top-K collapsed onto one lineage" means operationally, and what the top-K's
diversity rule limits (selection.py).
"""

from __future__ import annotations


def _provider(row: dict, by_id: dict[int, dict]) -> int | None:
    """The provider whose tensors this candidate actually received (None: it started from random)."""
    pid = row.get("provider_id")
    return pid if pid is not None and row.get("n_transferred") and pid in by_id and pid != row["id"] else None


def founders_and_depths(candidates: list[dict]) -> tuple[dict[int, int], dict[int, int]]:
    """Per candidate id, its founder's id and its depth (see the module docstring)."""
    by_id = {r["id"]: r for r in candidates}
    founder: dict[int, int] = {}
    depth: dict[int, int] = {}
    for cid in by_id:
        chain, cur = [], cid
        while cur is not None and cur not in founder and cur not in chain:
            chain.append(cur)
            cur = _provider(by_id[cur], by_id)
        if cur is None or cur in chain:        # reached a random start (or a corrupt cycle: cut it there)
            root, base = chain[-1], -1
        else:                                  # joined a chain resolved earlier
            root, base = founder[cur], depth[cur]
        for i, c in enumerate(reversed(chain)):
            founder[c], depth[c] = root, base + 1 + i
    return founder, depth


def count_lineages(ids: list[int], founder: dict[int, int]) -> int:
    """How many distinct lineages the given candidates come from."""
    return len({founder.get(i, i) for i in ids})


def ancestry(candidates: list[dict], candidate_id: int) -> list[dict]:
    """The chain of `candidate_id`'s weights, founder first: each row is the candidate's record
    plus `received` (tensors received from the row above it: none for the founder) and
    `changed` (the variable nodes whose choice differs from the row above)."""
    by_id = {r["id"]: r for r in candidates}
    chain: list[dict] = []
    cur: int | None = candidate_id
    while cur is not None and cur not in {r["id"] for r in chain}:
        chain.append(by_id[cur])
        cur = _provider(by_id[cur], by_id)
    chain.reverse()
    out = []
    for above, row in zip([None, *chain], chain):
        changed = [] if above is None else [i for i, (a, b) in enumerate(zip(above["arch_seq"], row["arch_seq"]))
                                            if a != b]
        out.append({**row, "received_from": above["id"] if above is not None else None,
                    "changed_nodes": changed})
    return out
