"""SQLite job store: jobs, their event log, and takes, surviving a server restart.

Events are numbered per job from 1 so a watcher can resume after any disconnect; jobs that
were running when the server died are queued again on start.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from typing import Iterable, Optional

from bridge.api import pb

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    request_id TEXT UNIQUE NOT NULL,
    request BLOB NOT NULL,
    operation INTEGER NOT NULL,
    shot TEXT NOT NULL,
    backend TEXT NOT NULL,
    state INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    error_code TEXT NOT NULL DEFAULT '',
    take_id TEXT NOT NULL DEFAULT '',
    progress BLOB,
    created_ms INTEGER NOT NULL,
    started_ms INTEGER NOT NULL DEFAULT 0,
    finished_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created_ms);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS takes (
    take_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    take_dir TEXT NOT NULL,
    shot TEXT NOT NULL,
    version INTEGER NOT NULL,
    take BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (shot, version)
);
CREATE TABLE IF NOT EXISTS media_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (
    take_id TEXT NOT NULL,
    approve INTEGER NOT NULL,
    note TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    time_ms INTEGER NOT NULL
);
"""

class RequestConflict(Exception):
    """A request_id already used for a different request."""

    def __init__(self, request_id: str, job_id: str):
        super().__init__(f"request_id {request_id[:128]!r} was already used for a different request (job "
                         f"{job_id}); use a new request_id")
        self.job_id = job_id


DB_NAME = "takebridge.sqlite"   # inside the server's --store folder
TERMINAL = (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED)
MAX_ATTEMPTS = 3


def now_ms() -> int:
    return int(time.time() * 1000)


class JobStore:
    """Thread-safe; one connection guarded by a lock, and a condition that wakes watchers."""

    def __init__(self, path: str):
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._migrate()
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)
        self._listeners: list = []   # called with a job id after each event (the async service's wake-up)

    def add_listener(self, listener) -> None:
        self._listeners.append(listener)

    def _migrate(self) -> None:
        """Columns added after the first release, added to older stores in place."""
        for table, column, kind in (("takes", "metrics", "TEXT NOT NULL DEFAULT '{}'"),
                                    ("jobs", "compute_ms", "INTEGER NOT NULL DEFAULT 0"),
                                    # the take a job will commit, recorded before its media moves
                                    # ({"take_id", "version", "shot", "manifest"}), so a restarted job
                                    # adopts it instead of making another
                                    ("jobs", "intended_take", "TEXT NOT NULL DEFAULT ''"),
                                    # who asked (the editor application and the machine it runs on):
                                    # queued jobs are taken in turn between clients
                                    ("jobs", "client", "TEXT NOT NULL DEFAULT ''")):
            names = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in names:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- jobs --------------------------------------------------------------------------------
    def create_job(self, request: "pb.SubmitJobRequest", shot: str, backend: str,
                   client: str = "") -> tuple["pb.Job", bool]:
        """Insert a queued job; for a known request_id return the existing job and False.

        One transaction decides: of concurrent submits with one request_id, exactly one inserts;
        the others get that job when their payload is the same, and RequestConflict when not."""
        payload = request.SerializeToString(deterministic=True)
        with self._lock:
            row = self._db.execute("SELECT job_id, request FROM jobs WHERE request_id=?",
                                   (request.request_id,)).fetchone()
            if row:
                if bytes(row[1]) != payload:
                    raise RequestConflict(request.request_id, row[0])
                return self.get_job(row[0]), False
            job_id = uuid.uuid4().hex[:16]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO jobs (job_id, request_id, request, operation, shot, backend, state, created_ms, "
                    "client) VALUES (?,?,?,?,?,?,?,?,?)",
                    (job_id, request.request_id, payload, request.operation, shot, backend, pb.QUEUED, now_ms(),
                     client))
                self.append_event(job_id, pb.JobEvent(queued=pb.Queued(position=self.queue_position(job_id))))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self.get_job(job_id), True

    def job_for_request(self, request_id: str) -> Optional["pb.Job"]:
        with self._lock:
            row = self._db.execute("SELECT job_id FROM jobs WHERE request_id=?", (request_id,)).fetchone()
            return self.get_job(row[0]) if row else None

    def cancel_if_queued(self, job_id: str) -> bool:
        """Cancel a job that has not started; False when a worker claimed it meanwhile."""
        with self._lock:
            if self._db.execute("SELECT state FROM jobs WHERE job_id=?", (job_id,)).fetchone()[0] != pb.QUEUED:
                return False
            self.finish(job_id, pb.CANCELLED, event=pb.JobEvent(cancelled=pb.Cancelled(reason="cancelled while queued")))
            return True

    def request_of(self, job_id: str) -> "pb.SubmitJobRequest":
        with self._lock:
            row = self._db.execute("SELECT request FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        return pb.SubmitJobRequest.FromString(row[0])

    def same_request(self, job_id: str, request: "pb.SubmitJobRequest") -> bool:
        return self.request_of(job_id).SerializeToString(deterministic=True) == request.SerializeToString(
            deterministic=True)

    def get_job(self, job_id: str) -> Optional["pb.Job"]:
        with self._lock:
            row = self._db.execute(
                "SELECT job_id, request_id, operation, state, shot, progress, error, error_code, take_id, "
                "backend, attempts, created_ms, started_ms, finished_ms FROM jobs WHERE job_id=?",
                (job_id,)).fetchone()
            if row is None:
                return None
            last = self._db.execute("SELECT COALESCE(MAX(seq),0) FROM events WHERE job_id=?", (job_id,)).fetchone()[0]
            job = pb.Job(job_id=row[0], request_id=row[1], operation=row[2], state=row[3], shot=row[4],
                         error=row[6], error_code=row[7], backend=row[9], attempts=row[10],
                         created_unix_ms=row[11], started_unix_ms=row[12], finished_unix_ms=row[13],
                         last_event_seq=last)
            if row[5]:
                job.progress.ParseFromString(row[5])
            if row[8]:
                take = self.get_take(row[8])
                if take is not None:
                    job.take.CopyFrom(take)
            return job

    def list_jobs(self, states: Iterable[int] = (), shot: str = "", limit: int = 100) -> list["pb.Job"]:
        query, args = "SELECT job_id FROM jobs WHERE 1=1", []
        states = list(states)
        if states:
            query += f" AND state IN ({','.join('?' * len(states))})"
            args += states
        if shot:
            query += " AND shot=?"
            args.append(shot)
        query += " ORDER BY created_ms DESC, rowid DESC LIMIT ?"
        args.append(limit or 100)
        with self._lock:
            ids = [r[0] for r in self._db.execute(query, args)]
            return [self.get_job(i) for i in ids]

    def queue_position(self, job_id: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE state=? AND created_ms <= (SELECT created_ms FROM jobs "
                "WHERE job_id=?) AND job_id != ?", (pb.QUEUED, job_id, job_id)).fetchone()
        return row[0] + 1

    def claim_next(self, backends: Iterable[str], accept=None) -> Optional[str]:
        """Mark the next queued job for one of `backends` RUNNING and return its id: in turn
        between clients (the one whose last job started longest ago goes first: one editor's
        twenty queued extensions do not starve another's inpaint), each client's oldest first.
        `accept(backend, request)` may pass a job over (it stays queued for another worker)."""
        backends = list(backends)
        with self._lock:
            queued = self._db.execute(
                f"SELECT job_id, client, created_ms, rowid, backend, request FROM jobs WHERE state=? AND backend IN "
                f"({','.join('?' * len(backends))})", (pb.QUEUED, *backends)).fetchall()
            if not queued:
                return None
            last = dict(self._db.execute("SELECT client, MAX(started_ms) FROM jobs WHERE started_ms > 0 "
                                         "GROUP BY client").fetchall())
            ordered = sorted(queued, key=lambda r: (last.get(r[1], -1), r[2], r[3]))
            if accept is not None:
                ordered = [r for r in ordered if accept(r[4], pb.SubmitJobRequest.FromString(bytes(r[5])))]
                if not ordered:
                    return None
            job_id = ordered[0][0]
            self._db.execute("UPDATE jobs SET state=?, attempts=attempts+1, started_ms=? WHERE job_id=?",
                             (pb.RUNNING, now_ms(), job_id))
            return job_id

    def requeue(self, job_id: str) -> None:
        """A RUNNING job whose worker went away goes back to the queue (its attempts kept)."""
        with self._lock:
            self._db.execute("UPDATE jobs SET state=? WHERE job_id=? AND state=?", (pb.QUEUED, job_id, pb.RUNNING))
            self.append_event(job_id, pb.JobEvent(queued=pb.Queued(position=self.queue_position(job_id))))

    def requeue_interrupted(self, max_attempts: int = MAX_ATTEMPTS) -> tuple[list[str], list[str]]:
        """Jobs left RUNNING by a server that died go back to the queue (called at start);
        a job that was running during `max_attempts` deaths fails instead of looping forever.
        Returns (requeued, failed)."""
        requeued, failed = [], []
        with self._lock:
            rows = self._db.execute("SELECT job_id, attempts FROM jobs WHERE state=?", (pb.RUNNING,)).fetchall()
            for job_id, attempts in rows:
                if attempts >= max_attempts:
                    message = (f"the server stopped {attempts} times while running this job; it may be what "
                               f"crashes it. Check the server log, then submit it again")
                    self.finish(job_id, pb.FAILED, error=message, error_code="interrupted_too_often",
                                event=pb.JobEvent(failed=pb.Failure(code="interrupted_too_often", message=message)))
                    failed.append(job_id)
                    continue
                self._db.execute("UPDATE jobs SET state=? WHERE job_id=?", (pb.QUEUED, job_id))
                self.append_event(job_id, pb.JobEvent(queued=pb.Queued(position=self.queue_position(job_id))))
                requeued.append(job_id)
        return requeued, failed

    def set_progress(self, job_id: str, progress: "pb.Progress") -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET progress=? WHERE job_id=?", (progress.SerializeToString(), job_id))

    def finish(self, job_id: str, state: int, *, take_id: str = "", error: str = "", error_code: str = "",
               event: Optional["pb.JobEvent"] = None) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("UPDATE jobs SET state=?, take_id=?, error=?, error_code=?, finished_ms=? "
                                 "WHERE job_id=?", (state, take_id, error, error_code, now_ms(), job_id))
                if event is not None:
                    self.append_event(job_id, event, state=state)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def request_cancel(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET cancel_requested=1 WHERE job_id=?", (job_id,))

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT cancel_requested FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        return bool(row and row[0])

    # -- events ------------------------------------------------------------------------------
    def append_event(self, job_id: str, event: "pb.JobEvent", state: int | None = None) -> "pb.JobEvent":
        with self._lock:
            seq = self._db.execute("SELECT COALESCE(MAX(seq),0)+1 FROM events WHERE job_id=?",
                                   (job_id,)).fetchone()[0]
            if state is None:
                state = self._db.execute("SELECT state FROM jobs WHERE job_id=?", (job_id,)).fetchone()[0]
            event.seq, event.job_id, event.time_unix_ms, event.state = seq, job_id, now_ms(), state
            self._db.execute("INSERT INTO events (job_id, seq, kind, event) VALUES (?,?,?,?)",
                             (job_id, seq, event.WhichOneof("kind") or "", event.SerializeToString()))
            self.changed.notify_all()
        for listener in self._listeners:
            try:
                listener(job_id)
            except RuntimeError:   # the listener's event loop has closed (server stopped)
                pass
        return event

    def events_after(self, job_id: str, after_seq: int, include_previews: bool,
                     limit: int = -1) -> list["pb.JobEvent"]:
        query = "SELECT event FROM events WHERE job_id=? AND seq>?"
        if not include_previews:
            query += " AND kind != 'preview'"
        with self._lock:
            return [pb.JobEvent.FromString(r[0]) for r in self._db.execute(query + " ORDER BY seq LIMIT ?",
                                                                          (job_id, after_seq, limit))]

    def last_seq(self, job_id: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(seq),0) FROM events WHERE job_id=?",
                                    (job_id,)).fetchone()[0]

    # -- takes -------------------------------------------------------------------------------
    def versions_in_use(self, slug: str) -> set[int]:
        """Versions of the shot whose folder name is `slug` (two shot names may share one),
        recorded as takes or reserved by a job that has not committed yet."""
        with self._lock:
            used = {version for take_id, version in self._db.execute("SELECT take_id, version FROM takes")
                    if take_id == f"{slug}_v{version:03d}"}
            for (text,) in self._db.execute("SELECT intended_take FROM jobs WHERE intended_take != ''"):
                intended = json.loads(text)
                if intended.get("slug") == slug:
                    used.add(int(intended["version"]))
            return used

    def intended_take(self, job_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT intended_take FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def set_intended_take(self, job_id: str, intended: dict) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET intended_take=? WHERE job_id=?", (json.dumps(intended), job_id))

    def take_of_job(self, job_id: str) -> Optional["pb.Take"]:
        with self._lock:
            row = self._db.execute("SELECT take FROM takes WHERE job_id=? ORDER BY created_ms LIMIT 1",
                                   (job_id,)).fetchone()
        return pb.Take.FromString(row[0]) if row else None

    def add_take(self, take_dir: str, take: "pb.Take", metrics: dict | None = None) -> None:
        """Record a take with the figures the pilot report counts (timings, sizes, gates)."""
        with self._lock:
            self._db.execute("INSERT INTO takes (take_id, job_id, take_dir, shot, version, take, created_ms, metrics) "
                             "VALUES (?,?,?,?,?,?,?,?)", (take.take_id, take.job_id, take_dir, take.shot,
                                                          take.version, take.SerializeToString(), now_ms(),
                                                          json.dumps(metrics or {})))

    def add_compute(self, job_id: str, seconds: float) -> None:
        """Count compute time spent on a job (every attempt, finished or not)."""
        with self._lock:
            self._db.execute("UPDATE jobs SET compute_ms = compute_ms + ? WHERE job_id=?",
                             (int(round(seconds * 1000)), job_id))

    def compute_seconds_used(self) -> float:
        with self._lock:
            return (self._db.execute("SELECT COALESCE(SUM(compute_ms), 0) FROM jobs").fetchone()[0]) / 1000

    def get_take(self, take_id: str) -> Optional["pb.Take"]:
        with self._lock:
            row = self._db.execute("SELECT take FROM takes WHERE take_id=?", (take_id,)).fetchone()
        return pb.Take.FromString(row[0]) if row else None

    def take_dirs(self) -> list[str]:
        """Every take folder a take was committed to (the folders the server wrote)."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT take_dir FROM takes")]

    def take_dir_of(self, take_id: str) -> Optional[str]:
        with self._lock:
            row = self._db.execute("SELECT take_dir FROM takes WHERE take_id=?", (take_id,)).fetchone()
        return row[0] if row else None

    def update_take(self, take: "pb.Take") -> None:
        with self._lock:
            self._db.execute("UPDATE takes SET take=? WHERE take_id=?", (take.SerializeToString(), take.take_id))

    def cached_hash(self, path: str, size: int, mtime_ns: int) -> Optional[str]:
        with self._lock:
            row = self._db.execute("SELECT sha256 FROM media_hashes WHERE path=? AND size=? AND mtime_ns=?",
                                   (path, size, mtime_ns)).fetchone()
        return row[0] if row else None

    def remember_hash(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO media_hashes (path, size, mtime_ns, sha256) VALUES (?,?,?,?)",
                             (path, size, mtime_ns, sha256))

    def add_review(self, take_id: str, approve: bool, note: str, reviewer: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO reviews (take_id, approve, note, reviewer, time_ms) VALUES (?,?,?,?,?)",
                             (take_id, int(approve), note, reviewer, now_ms()))
