"""A SQLite store of completions, keyed by a hash of everything that determines one.

The key hashes the endpoint's host (scheme, host and port: not its key, not its path quirks),
the model and the request's identity (messages, sampling options with the seed, the
answer-by-option-probability labels). The value is the completion in its one serialisation
(`Completion.to_fields`, the same the run log uses), so log-probabilities survive a cache hit.
Policy (when to read, when to write) is the runner's; this module only stores.

Several evalkit processes may share one cache file: it runs in WAL mode with a busy timeout, and
writes are batched into one transaction per `FLUSH_EVERY` completions (and at close), so a run of
thousands of samples is not slowed by a commit per answer. A crash loses at most the last batch,
which the run log still holds.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlsplit

from evalkit.backends.base import Completion, Request

FLUSH_EVERY = 200


def cache_key(endpoint: str, model: str, request: Request, wire: dict | None = None) -> str:
    """The key of a reply: where it came from, the model, the request, and how the model's rule
    spells it on the wire (`wire`, when one applies: a changed rule is a different request)."""
    parts = urlsplit(endpoint)
    payload = {"host": f"{parts.scheme}://{parts.netloc}", "model": model, **request.identity(),
               **({"wire": wire} if wire else {})}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()   # ASCII: any text hashes


class Cache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS completions_v2 (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL)")
        self._pending: dict[str, tuple[str, float]] = {}

    def get(self, key: str) -> Completion | None:
        row = self._db.execute("SELECT value FROM completions_v2 WHERE key = ?", (key,)).fetchone()
        if row is None:
            if key not in self._pending:
                return None
            row = self._pending[key]
        return Completion.from_fields(json.loads(row[0]))

    def put(self, key: str, completion: Completion) -> None:
        value = json.dumps(completion.to_fields())      # ASCII: a lone surrogate from a server stays an escape
        self._pending[key] = (value, time.time())
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, {}
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany("INSERT OR REPLACE INTO completions_v2 (key, value, created) VALUES (?, ?, ?)",
                             [(k, v, t) for k, (v, t) in rows.items()])
        self._db.execute("COMMIT")

    def close(self) -> None:
        self.flush()
        self._db.close()
