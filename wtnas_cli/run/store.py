"""The run store: SQLite (WAL) in the run directory, written only by the scheduler.

Every candidate is a row from the moment it is submitted (status 'pending') until it finishes
('ok' or 'failed'); `finish_seq` orders finished candidates so a resumed run can replay them.
"""

from __future__ import annotations

import csv
import functools
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Literal

from .job import TIMING_KEYS, Job, Result

SCHEMA_VERSION = 1

_COLUMNS = [
    ("id", "INTEGER PRIMARY KEY"), ("arch_seq", "TEXT NOT NULL"), ("parent_id", "INTEGER"),
    ("provider_id", "INTEGER"), ("distance", "INTEGER"), ("matcher", "TEXT"), ("status", "TEXT NOT NULL"),
    ("score", "REAL"), ("metrics", "TEXT"), ("num_params", "INTEGER"), ("n_transferred", "INTEGER"), ("n_tensors", "INTEGER"),
    ("n_partial", "INTEGER"), ("transfer_share", "REAL"), ("n_role_crossed", "INTEGER"),
    *[(k, "REAL") for k in TIMING_KEYS],
    ("submitted_at", "REAL"), ("started_at", "REAL"), ("finished_at", "REAL"), ("elapsed_s", "REAL"),
    ("finish_seq", "INTEGER"), ("worker", "TEXT"), ("worker_rss_mb", "REAL"), ("checkpoint", "TEXT"),
    ("checkpoint_bytes", "INTEGER"), ("error", "TEXT"),
    ("checkpoint_deleted", "INTEGER DEFAULT 0"),   # 1: deleted by --keep needed (retention.py)
    # epochs its weights have trained, and (promoting strategies, e.g. asha) the highest rung it
    # reached: its score, metrics and checkpoint are that rung's; every rung is in `rungs`
    ("epochs", "INTEGER"), ("rung", "INTEGER"),
]
COLUMN_NAMES = [c for c, _ in _COLUMNS]

# models trained after the search (wtnas topk): one row per candidate, mode and training settings
_TRAINED = [
    ("candidate_id", "INTEGER NOT NULL"), ("mode", "TEXT NOT NULL"), ("settings", "TEXT NOT NULL"),
    ("in_topk", "INTEGER DEFAULT 0"), ("in_tau_sample", "INTEGER DEFAULT 0"), ("status", "TEXT NOT NULL"),
    ("estimated_score", "REAL"), ("epochs_trained", "INTEGER"), ("epochs_to_converge", "INTEGER"),
    ("converged", "INTEGER"), ("objective_at_stop", "REAL"), ("objective_final", "REAL"), ("curve", "TEXT"),
    ("warm_started", "INTEGER"), ("num_params", "INTEGER"), ("train_s", "REAL"), ("eval_s", "REAL"),
    ("wall_s", "REAL"), ("checkpoint", "TEXT"), ("error", "TEXT"), ("note", "TEXT"), ("finished_at", "REAL"),
    ("start_score", "REAL"),   # the objective before training (--stop-reference start)
    ("objective_test", "REAL"), ("test_metrics", "TEXT"),   # on the test split, once after training
]


def selection_key(mode: str, settings: str) -> str:
    """Meta key of the latest `wtnas topk` selection for a mode and training settings."""
    return f"topk_selection:{mode}:{settings}"


def topk_wall_key(mode: str, settings: str) -> str:
    """Meta key of the wall time `wtnas topk` calls spent on one mode and setting, checks included
    (seconds, summed over calls): with the search's, the time from `wtnas run` to the model."""
    return f"topk_wall_s:{mode}:{settings}"


def topk_checks_key(mode: str, settings: str) -> str:
    """Meta key of the part of `topk_wall_key`'s time spent choosing the top-K (its from-scratch
    verification checks, summed over calls)."""
    return f"topk_checks_s:{mode}:{settings}"


def latest_settings_key(mode: str) -> str:
    """Meta key of the training settings of the latest `wtnas topk` call in a mode (its models
    may all have been trained by an earlier call: the report still describes this one)."""
    return f"topk_latest:{mode}"


# lineage-bias controls (search/controls.py): one row per candidate that also trains from scratch
_CONTROLS = [
    ("candidate_id", "INTEGER PRIMARY KEY"), ("status", "TEXT NOT NULL"), ("score", "REAL"), ("metrics", "TEXT"),
    ("train_s", "REAL"), ("wall_s", "REAL"), ("worker", "TEXT"), ("error", "TEXT"), ("submitted_at", "REAL"),
    ("finished_at", "REAL"), ("origin", "TEXT DEFAULT 'search'"),   # 'search' or 'verify' (wtnas topk)
]
# promoting strategies (asha): one row per candidate and rung it was trained to; rung 0 is the
# candidate's own job, a higher rung a promotion (pending until its result is stored)
_RUNGS = [
    ("candidate_id", "INTEGER NOT NULL"), ("rung", "INTEGER NOT NULL"), ("epochs", "INTEGER NOT NULL"),
    ("status", "TEXT NOT NULL"), ("score", "REAL"), ("metrics", "TEXT"), ("train_s", "REAL"), ("wall_s", "REAL"),
    ("worker", "TEXT"), ("error", "TEXT"), ("submitted_at", "REAL"), ("finished_at", "REAL"), ("elapsed_s", "REAL"),
    ("finish_seq", "INTEGER"),
]
_CHECKS = [   # from-scratch checks longer than the search's budget (wtnas topk --check-epochs)
    ("candidate_id", "INTEGER NOT NULL"), ("epochs", "INTEGER NOT NULL"), ("status", "TEXT NOT NULL"),
    ("score", "REAL"), ("wall_s", "REAL"), ("worker", "TEXT"), ("error", "TEXT"), ("submitted_at", "REAL"),
    ("finished_at", "REAL"),
]


class RunStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        cols = ", ".join(f"{c} {t}" for c, t in _COLUMNS)
        self.db.executescript(f"""
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS candidates ({cols});
            CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, candidate_id INTEGER,
                                               time REAL, kind TEXT, message TEXT);
            CREATE TABLE IF NOT EXISTS controls ({", ".join(f"{c} {t}" for c, t in _CONTROLS)});
            CREATE TABLE IF NOT EXISTS trained ({", ".join(f"{c} {t}" for c, t in _TRAINED)},
                                                PRIMARY KEY (candidate_id, mode, settings));
            CREATE TABLE IF NOT EXISTS checks ({", ".join(f"{c} {t}" for c, t in _CHECKS)},
                                               PRIMARY KEY (candidate_id, epochs));
            CREATE TABLE IF NOT EXISTS rungs ({", ".join(f"{c} {t}" for c, t in _RUNGS)},
                                              PRIMARY KEY (candidate_id, rung));
        """)
        for table, columns in (("candidates", _COLUMNS), ("controls", _CONTROLS), ("trained", _TRAINED)):
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns:  # stores written by an older wtnas gain the new columns
                if column not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        self._next_finish_seq: int | None = None
        self._transaction = _Transaction(self.db)
        self._pending: dict[int, dict] = {}   # rows this process submitted, as candidate() returns them
        if self.get_meta("schema_version") is None:
            self.set_meta("schema_version", SCHEMA_VERSION)

    def transaction(self) -> "_Transaction":
        """One transaction for the block; inside an open one, part of it. The scheduler stores a
        poll's results, the checkpoint deletions they allow and the jobs refilling the workers in
        one commit: each transaction costs several file-lock and WAL system calls."""
        return self._transaction

    # -- meta -------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # -- candidates -------------------------------------------------------------------------
    def next_id(self) -> int:
        row = self.db.execute("SELECT MAX(id) FROM candidates").fetchone()
        return 0 if row[0] is None else row[0] + 1

    def add_pending(self, job: Job, parent_id: int | None, distance: int | None) -> None:
        row = dict.fromkeys(COLUMN_NAMES)
        row.update(id=job.candidate_id, arch_seq=list(job.arch_seq), parent_id=parent_id, provider_id=job.provider_id,
                   distance=distance, matcher=job.matcher, status="pending", submitted_at=time.time(),
                   checkpoint=job.checkpoint_path, checkpoint_deleted=0)
        self.db.execute(
            "INSERT OR REPLACE INTO candidates (id, arch_seq, parent_id, provider_id, distance, matcher, status,"
            " submitted_at, checkpoint) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            (job.candidate_id, json.dumps(row["arch_seq"]), parent_id, job.provider_id, distance,
             job.matcher, row["submitted_at"], job.checkpoint_path))
        self._pending[job.candidate_id] = row   # record() returns it completed, without reading it back

    def record(self, result: Result, elapsed_s: float) -> dict:
        """Store a finished candidate (and its events) in one transaction; return its row."""
        finish_seq = self._finish_seq()
        fields = {
            "status": result.status, "score": result.score, "metrics": json.dumps(result.metrics) if result.metrics else None,
            "num_params": result.num_params,
            "n_transferred": result.n_transferred, "n_tensors": result.n_tensors, "n_partial": result.n_partial,
            "transfer_share": result.transfer_share, "n_role_crossed": result.n_role_crossed,
            "started_at": result.started_at, "finished_at": result.finished_at, "elapsed_s": elapsed_s,
            "finish_seq": finish_seq, "worker": result.worker, "worker_rss_mb": result.worker_rss_mb,
            "checkpoint_bytes": result.checkpoint_bytes,
            "error": result.error, **{k: result.timings.get(k) for k in TIMING_KEYS},
            "epochs": result.epochs_trained if result.status == "ok" else None, "rung": result.rung,
        }
        if result.status != "ok":
            fields["checkpoint"] = None
        with self.transaction():
            self.db.execute(_update_sql(tuple(fields)), (*fields.values(), result.candidate_id))
            if result.rung is not None:   # a promoting strategy's candidate: its rung 0
                self.db.execute("INSERT OR REPLACE INTO rungs (candidate_id, rung, epochs, status, submitted_at)"
                                " VALUES (?, 0, ?, 'pending', ?)", (result.candidate_id, result.epochs_trained,
                                                                    result.started_at))
                self._finish_rung(result, elapsed_s, finish_seq)
            for message in result.events:
                self.add_event(result.candidate_id, "transfer_fallback", message)
            if result.status != "ok" and result.error:
                self.add_event(result.candidate_id, "failed", result.error)
        self._next_finish_seq = finish_seq + 1  # only once the transaction committed
        row = self._pending.pop(result.candidate_id, None)
        if row is None:     # submitted by an earlier process (a resumed run): read it back
            return self.candidate(result.candidate_id)
        row.update(fields)
        return row

    def _finish_seq(self) -> int:
        """The next finish_seq, shared by candidates and promotions (a resumed run replays both in
        this order)."""
        if self._next_finish_seq is None:  # the scheduler is the only writer: count in memory
            row = self.db.execute("SELECT MAX(s) FROM (SELECT MAX(finish_seq) AS s FROM candidates"
                                  " UNION ALL SELECT MAX(finish_seq) FROM rungs)").fetchone()
            self._next_finish_seq = 0 if row[0] is None else row[0] + 1
        return self._next_finish_seq

    # -- rungs (promoting strategies) ------------------------------------------------------
    def add_promotion(self, candidate_id: int, rung: int, epochs: int) -> None:
        """A promotion submitted: `candidate_id` trained on to `epochs` epochs in all (rung `rung`)."""
        self.db.execute("INSERT OR REPLACE INTO rungs (candidate_id, rung, epochs, status, submitted_at)"
                        " VALUES (?, ?, ?, 'pending', ?)", (candidate_id, rung, epochs, time.time()))

    def record_promotion(self, result: Result, elapsed_s: float) -> dict:
        """Store a finished promotion: its rung row, and when it succeeded the candidate's row
        (score, metrics, epochs and rung become the new rung's, its training time grows). A
        failed promotion leaves the candidate as it was (its checkpoint was not replaced).
        Returns the candidate's row."""
        finish_seq = self._finish_seq()
        with self.transaction():
            self._finish_rung(result, elapsed_s, finish_seq)
            if result.status == "ok":
                self.db.execute(
                    "UPDATE candidates SET score = ?, metrics = ?, rung = ?, epochs = COALESCE(epochs, 0) + ?,"
                    " train_s = COALESCE(train_s, 0) + ?, eval_s = COALESCE(eval_s, 0) + ?, checkpoint_bytes = ?,"
                    " finished_at = ?, elapsed_s = ? WHERE id = ?",
                    (result.score, json.dumps(result.metrics) if result.metrics else None, result.rung,
                     result.epochs_trained, result.timings.get("train_s") or 0.0, result.timings.get("eval_s") or 0.0,
                     result.checkpoint_bytes, result.finished_at, elapsed_s, result.candidate_id))
            for message in result.events:
                self.add_event(result.candidate_id, "promotion", message)
            if result.status != "ok" and result.error:
                self.add_event(result.candidate_id, "promotion_failed", f"rung {result.rung}: {result.error}")
        self._next_finish_seq = finish_seq + 1   # only once the transaction committed
        return self.candidate(result.candidate_id)

    def _finish_rung(self, result: Result, elapsed_s: float, finish_seq: int) -> None:
        self.db.execute(
            "UPDATE rungs SET status = ?, score = ?, metrics = ?, train_s = ?, wall_s = ?, worker = ?, error = ?,"
            " finished_at = ?, elapsed_s = ?, finish_seq = ? WHERE candidate_id = ? AND rung = ?",
            (result.status, result.score, json.dumps(result.metrics) if result.metrics else None,
             result.timings.get("train_s"), (result.finished_at or 0) - (result.started_at or 0), result.worker,
             result.error, result.finished_at, elapsed_s, finish_seq, result.candidate_id, result.rung))

    def rungs(self, candidate_id: int | None = None, status: str | None = None) -> list[dict]:
        """Rung rows (promoting strategies), by candidate and rung; [] for other runs."""
        where, args = _where(candidate_id=candidate_id, status=status)
        return [dict(r) for r in self.db.execute(f"SELECT * FROM rungs {where} ORDER BY candidate_id, rung", args)]

    def drop_checkpoint(self, candidate_id: int, reason: str, path: str | None = None) -> str | None:
        """Mark a checkpoint deleted (before the file goes: a crash leaves at worst a stray file,
        never a row pointing at nothing; inside `transaction()`, delete it after the commit);
        return the path to delete (`path` if the caller knows it)."""
        if path is None:
            row = self.db.execute("SELECT checkpoint FROM candidates WHERE id = ?", (candidate_id,)).fetchone()
            path = row[0] if row else None
        with self.transaction():
            self.db.execute("UPDATE candidates SET checkpoint = NULL, checkpoint_deleted = 1 WHERE id = ?",
                            (candidate_id,))
            self.add_event(candidate_id, "checkpoint_deleted", reason)
        return path

    def deleted_checkpoint_ids(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM candidates WHERE checkpoint_deleted = 1")]

    def add_event(self, candidate_id: int | None, kind: str, message: str) -> None:
        self.db.execute("INSERT INTO events (candidate_id, time, kind, message) VALUES (?, ?, ?, ?)",
                        (candidate_id, time.time(), kind, message))

    def candidate(self, candidate_id: int) -> dict:
        row = self.db.execute("SELECT * FROM candidates WHERE id = ?", (candidate_id,)).fetchone()
        return _row(row)

    def candidates(self, status: str | None = None, order: str = "id", limit: int | None = None) -> list[dict]:
        if order not in ("id", "finish_seq", "score"):
            raise ValueError(order)
        where = "WHERE status = ?" if status else ""
        direction = "DESC" if order == "score" else "ASC"
        args: tuple = (status,) if status else ()
        rows = self.db.execute(f"SELECT * FROM candidates {where} ORDER BY {order} {direction}, id"
                               + (" LIMIT ?" if limit is not None else ""), args + ((limit,) if limit is not None else ()))
        return [_row(r) for r in rows]

    def events(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM events ORDER BY id")]

    def counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute("SELECT status, COUNT(*) FROM candidates GROUP BY status")}

    def export_csv(self, path: str | Path) -> Path:
        """results.csv: one row per candidate, every stored column (arch_seq as JSON)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMN_NAMES)
            for r in self.db.execute(f"SELECT {', '.join(COLUMN_NAMES)} FROM candidates ORDER BY id"):
                writer.writerow(["" if v is None else v for v in r])
        tmp.replace(path)
        return path

    # -- lineage-bias controls ----------------------------------------------------------------
    def add_control(self, candidate_id: int, origin: str = "search") -> None:
        self.db.execute("INSERT OR REPLACE INTO controls (candidate_id, status, submitted_at, origin)"
                        " VALUES (?, 'pending', ?, ?)", (candidate_id, time.time(), origin))

    def record_control(self, result: Result) -> dict:
        fields = {"status": result.status, "score": result.score,
                  "metrics": json.dumps(result.metrics) if result.metrics else None,
                  "train_s": result.timings.get("train_s"),
                  "wall_s": (result.finished_at or 0) - (result.started_at or 0), "worker": result.worker,
                  "error": result.error, "finished_at": result.finished_at}
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE controls SET {sets} WHERE candidate_id = ?", (*fields.values(), result.candidate_id))
        return self.controls(candidate_id=result.candidate_id)[0]

    def controls(self, status: str | None = None, candidate_id: int | None = None) -> list[dict]:
        where, args = _where(status=status, candidate_id=candidate_id)
        return [dict(r) for r in self.db.execute(f"SELECT * FROM controls {where} ORDER BY candidate_id", args)]

    def add_check(self, candidate_id: int, epochs: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO checks (candidate_id, epochs, status, submitted_at)"
                        " VALUES (?, ?, 'pending', ?)", (candidate_id, epochs, time.time()))

    def record_check(self, result: Result, epochs: int) -> None:
        self.db.execute("UPDATE checks SET status = ?, score = ?, wall_s = ?, worker = ?, error = ?, finished_at = ?"
                        " WHERE candidate_id = ? AND epochs = ?",
                        (result.status, result.score, (result.finished_at or 0) - (result.started_at or 0),
                         result.worker, result.error, result.finished_at, result.candidate_id, epochs))

    def checks(self, epochs: int | None = None) -> list[dict]:
        """Longer from-scratch checks (all budgets, or one)."""
        where, args = ("WHERE epochs = ?", (epochs,)) if epochs is not None else ("", ())
        return [dict(r) for r in self.db.execute(f"SELECT * FROM checks {where} ORDER BY candidate_id, epochs", args)]

    # -- top-K training ---------------------------------------------------------------------
    def select_for_training(self, candidate_id: int, mode: str, settings: str, estimated_score: float,
                            in_topk: bool, in_tau_sample: bool) -> None:
        """Add a model to train (status 'pending') or widen the reasons an existing one is kept."""
        self.db.execute(
            "INSERT INTO trained (candidate_id, mode, settings, status, estimated_score, in_topk, in_tau_sample)"
            " VALUES (?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (candidate_id, mode, settings) DO UPDATE SET"
            " in_topk = MAX(in_topk, excluded.in_topk), in_tau_sample = MAX(in_tau_sample, excluded.in_tau_sample)",
            (candidate_id, mode, settings, estimated_score, int(in_topk), int(in_tau_sample)))

    def record_trained(self, result: Result, mode: str, settings: str) -> dict:
        ok = result.status == "ok"
        converged = result.stop_epoch is not None
        fields = {
            "status": result.status, "epochs_trained": result.epochs_trained,
            "epochs_to_converge": (result.stop_epoch if converged else result.epochs_trained) if ok else None,
            "converged": int(converged), "objective_at_stop": result.score_at_stop if converged else result.score,
            "objective_final": result.score, "curve": json.dumps(result.curve),
            "warm_started": int(result.n_transferred > 0), "num_params": result.num_params,
            "train_s": result.timings.get("train_s"), "eval_s": result.timings.get("eval_s"),
            "wall_s": (result.finished_at or 0) - (result.started_at or 0),
            "checkpoint": result.checkpoint_path if ok else None, "error": result.error,
            "note": "; ".join(result.events) or None, "finished_at": result.finished_at,
            "start_score": result.start_score, "objective_test": result.test_score,
            "test_metrics": json.dumps(result.test_metrics) if result.test_score is not None else None,
        }
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction():
            self.db.execute(f"UPDATE trained SET {sets} WHERE candidate_id = ? AND mode = ? AND settings = ?",
                            (*fields.values(), result.candidate_id, mode, settings))
            for message in result.events:
                self.add_event(result.candidate_id, "topk_fallback", message)
        return self.trained(mode, settings, candidate_id=result.candidate_id)[0]

    def trained(self, mode: str | None = None, settings: str | None = None,
                candidate_id: int | None = None) -> list[dict]:
        where, args = _where(mode=mode, settings=settings, candidate_id=candidate_id)
        rows = self.db.execute(f"SELECT * FROM trained {where} ORDER BY estimated_score DESC, candidate_id", args)
        out = []
        for r in rows:
            d = dict(r)
            d["curve"] = json.loads(d["curve"]) if d["curve"] else []
            d["test_metrics"] = json.loads(d["test_metrics"]) if d.get("test_metrics") else {}
            out.append(d)
        return out

    def close(self) -> None:
        self.db.close()


def _where(**filters: Any) -> tuple[str, list]:
    """A WHERE clause (and its arguments) for the filters that are set (None: any value)."""
    given = {column: value for column, value in filters.items() if value is not None}
    return ("WHERE " + " AND ".join(f"{column} = ?" for column in given) if given else ""), list(given.values())


@functools.lru_cache(maxsize=8)
def _update_sql(columns: tuple[str, ...]) -> str:
    return f"UPDATE candidates SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"


class _Transaction:
    """A re-entrant transaction (a class, not a generator: the scheduler enters several per
    candidate). An error rolls it back; Ctrl-C commits what its statements stored (each one is
    complete, and a result the scheduler already received is not thrown away)."""

    __slots__ = ("db", "depth")

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.depth = 0

    def __enter__(self) -> None:
        if self.depth == 0:
            self.db.execute("BEGIN")
        self.depth += 1

    def __exit__(self, kind, exc, tb) -> Literal[False]:
        self.depth -= 1
        if self.depth == 0:
            if kind is None or issubclass(kind, KeyboardInterrupt):
                self.db.commit()
            else:
                self.db.rollback()
        return False


def _row(row: sqlite3.Row | None) -> dict:
    if row is None:
        return {}
    d = dict(row)
    d["arch_seq"] = json.loads(d["arch_seq"])
    return d
