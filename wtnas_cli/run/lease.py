"""One writer per run directory: an exclusive lease that works on shared file systems.

`flock` is not honoured everywhere a run directory lives (NFS, Lustre, several nodes), so the
lease is a small file, `lease.json`, created with O_CREAT | O_EXCL (atomic on local disks, NFSv3+
and Lustre) and holding the holder's host, pid, process start time, command, when it started and
a heartbeat that a background thread refreshes every `timeout / 4` seconds.

A lease in the way is taken over only when it is provably dead:
- same host: the holder's pid no longer exists (or is another process now: its start time
  differs), so `--resume` right after a SIGKILL works at once;
- another host: its heartbeat is older than the timeout (`WTNAS_LEASE_TIMEOUT`, default 120 s;
  node clocks must agree to well within it).
Takeover renames the dead lease aside (only one contender's rename succeeds) and creates a fresh
one. A holder whose lease was taken over anyway (e.g. a node paused past the timeout) notices at
its next heartbeat: `lost` becomes set and the search stops submitting work.

Read-only commands (report, inspect, match) take no lease.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path

from ..errors import RunDirError

LEASE_NAME = "lease.json"
DEFAULT_TIMEOUT_S = 120.0


def lease_timeout() -> float:
    """Seconds without a heartbeat after which another host may take the lease over."""
    raw = os.environ.get("WTNAS_LEASE_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise RunDirError(f"WTNAS_LEASE_TIMEOUT={raw!r} is not a number of seconds; unset it or give e.g. 120")
    if value <= 0:
        raise RunDirError(f"WTNAS_LEASE_TIMEOUT={raw!r} must be positive (seconds)")
    return value


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state first), or None where unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (tells a reused pid apart); None where unknown."""
    stat = _proc_stat(pid)
    return stat[19] if stat and len(stat) > 19 else None   # field 22 of stat: starttime


def _alive(pid: int, start: str | None) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, owned by someone else
        pass
    stat = _proc_stat(pid)
    if stat and stat[0] in ("Z", "X"):   # killed, not yet reaped by its parent
        return False
    now = stat[19] if stat and len(stat) > 19 else None
    return start is None or now is None or now == start


def read_lease(run_dir: Path) -> dict | None:
    """The current lease record, or None (no lease, or one being written/replaced right now)."""
    try:
        return json.loads((Path(run_dir) / LEASE_NAME).read_text())
    except (OSError, ValueError):
        return None


def describe(record: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.get("since", 0)))
    beat = time.time() - record.get("heartbeat", 0)
    return (f"`{record.get('command', 'wtnas')}` on host {record.get('host', '?')}, pid {record.get('pid', '?')}, "
            f"since {since} (last heartbeat {beat:.0f} s ago)")


def is_stale(record: dict, timeout: float) -> bool:
    if record.get("host") == socket.gethostname():
        return not _alive(int(record.get("pid", -1)), record.get("pid_start"))
    return time.time() - float(record.get("heartbeat", 0)) > timeout


def check_reader_host(run_dir: str | Path) -> None:
    """Readers of a live run must be on the writer's host: the run store is SQLite in WAL mode,
    whose index lives in shared memory that does not cross hosts, so a reader on another node
    could see a torn state. A finished run (no live lease) is a plain file, readable anywhere."""
    record = read_lease(Path(run_dir))
    if record is None or record.get("host") == socket.gethostname():
        return
    if is_stale(record, float(record.get("timeout_s") or lease_timeout())):
        return
    raise RunDirError(f"{run_dir} is being written by {describe(record)}; while it runs, its SQLite store can only be "
                      f"read on host {record.get('host')} (WAL shared memory does not cross hosts): run this there, "
                      f"or here once the run has ended")


class RunLease:
    """`with RunLease(run_dir, "wtnas run"):` — exclusive for the block, or RunDirError at once."""

    def __init__(self, run_dir: str | Path, command: str):
        self.path = Path(run_dir) / LEASE_NAME
        self.command = command
        self.timeout = lease_timeout()
        self.token = secrets.token_hex(8)
        self.lost: dict | None = None      # the record that replaced ours, if that ever happens
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- taking and giving back ------------------------------------------------------------------
    def acquire(self) -> "RunLease":
        for _ in range(5):
            if self._create():
                self._thread = threading.Thread(target=self._beat, name="wtnas-lease", daemon=True)
                self._thread.start()
                return self
            record = read_lease(self.path.parent)
            if record is None:          # vanished or half-written: look again
                time.sleep(0.05)
                continue
            if not is_stale(record, self.timeout):
                raise RunDirError(f"{self.path.parent} is in use by {describe(record)}; wait for it to finish or "
                                  f"stop it (a dead holder's lease is taken over automatically: at once on the same "
                                  f"host, after {self.timeout:g} s without heartbeat from another)")
            aside = self.path.with_name(f".{LEASE_NAME}.stale-{self.token}")
            try:
                os.rename(self.path, aside)   # only one contender wins this
            except FileNotFoundError:
                continue
            aside.unlink(missing_ok=True)
        raise RunDirError(f"{self.path}: could not take the run directory's lease (other processes keep taking "
                          f"it); retry")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        record = read_lease(self.path.parent)
        if record is not None and record.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "RunLease":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # -- the record --------------------------------------------------------------------------------
    def _record(self, since: float) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _process_start(os.getpid()),
                "command": self.command, "since": since, "heartbeat": time.time(), "token": self.token,
                "timeout_s": self.timeout}

    def _create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        self.since = time.time()
        with os.fdopen(fd, "w") as f:
            json.dump(self._record(self.since), f)
            f.flush()
            os.fsync(f.fileno())
        return True

    def _beat(self) -> None:
        interval = max(0.05, self.timeout / 4)
        while not self._stop.wait(interval):
            record = read_lease(self.path.parent)
            if record is not None and record.get("token") != self.token:
                self.lost = record
                return
            tmp = self.path.with_name(f".{LEASE_NAME}.tmp-{self.token}")
            try:
                tmp.write_text(json.dumps(self._record(self.since)))
                os.replace(tmp, self.path)      # readers see the old or the new record, never half of one
            except OSError:                     # e.g. a full disk: the next beat tries again
                tmp.unlink(missing_ok=True)
