"""The batches a run log knows: its `file`, `created` and `settled` lines, and `evalkit batches LOG`.

`Journal` reads a log's batch lines back into `Entry`s and appends new ones one line at a time, so a
rerun knows which requests sit in a batch not yet settled (`unrecorded`) and never pays for them
twice; `custom_id` names each request stably across runs. `list_batches` shows (and with `--cancel`
cancels) each batch a log names, asking only the endpoint the user trusts (`check_endpoints`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Callable


def custom_id(phase: str, key: str) -> str:
    """A request's custom id: stable across runs, short, and free of whatever the sample id holds."""
    return f"{phase[0]}-{hashlib.sha256(key.encode()).hexdigest()[:24]}"


# ----------------------------------------------------------------------------- the journal

@dataclass
class Entry:
    """One batch as the run log knows it."""

    file_id: str
    phase: str
    custom_ids: list[str]
    model: str
    endpoint: str
    batch_id: str | None = None
    settled: str | None = None          # the state it was settled in


class Journal:
    """The run log's batch lines, read back and appended to (`note` writes one line at once)."""

    def __init__(self, lines: list[dict], note: Callable[[dict], None]):
        self.note = note
        self.entries: dict[str, Entry] = {}
        for rec in lines:
            event, fid = rec.get("event"), rec.get("file_id")
            if event == "file" and isinstance(fid, str) and isinstance(rec.get("custom_ids"), list):
                self.entries[fid] = Entry(fid, str(rec.get("phase")), [str(c) for c in rec["custom_ids"]],
                                          str(rec.get("model")), str(rec.get("endpoint")))
            elif fid in self.entries and event == "created":
                self.entries[fid].batch_id = str(rec.get("batch_id"))
            elif fid in self.entries and event == "settled":
                self.entries[fid].settled = str(rec.get("status"))

    def unsettled(self, phase: str) -> list[Entry]:
        return [e for e in self.entries.values() if e.phase == phase and e.settled is None]

    def tried(self, phase: str) -> set[str]:
        """Custom ids that were in a settled batch (they ended in an error if still wanted)."""
        return {c for e in self.entries.values() if e.phase == phase and e.settled for c in e.custom_ids}

    def filed(self, file_id: str, phase: str, ids: list[str], api, size: int) -> Entry:
        entry = Entry(file_id, phase, ids, api.model, api.endpoint)
        self.note({"event": "file", "phase": phase, "file_id": file_id, "model": api.model,
                   "endpoint": api.endpoint, "requests": len(ids), "bytes": size,
                   "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "custom_ids": ids})
        self.entries[file_id] = entry
        return entry

    def created(self, entry: Entry, batch_id: str) -> None:
        entry.batch_id = batch_id
        self.note({"event": "created", "file_id": entry.file_id, "batch_id": batch_id, "phase": entry.phase})

    def settle(self, entry: Entry, status: str) -> None:
        if entry.settled is None:
            entry.settled = status
            self.note({"event": "settled", "file_id": entry.file_id, "batch_id": entry.batch_id, "status": status})


def unrecorded(lines: list[dict], todo: list[str] | None = None) -> int:
    """How many batches a run log names whose results it has not recorded yet (with `todo`, the
    model batches holding one of those unit ids): sending their requests again would pay twice."""
    journal = Journal(lines, lambda rec: None)
    if todo is None:
        return len(journal.unsettled("model") + journal.unsettled("grader"))
    wanted = {custom_id("model", uid) for uid in todo}
    return sum(1 for e in journal.unsettled("model") if wanted & set(e.custom_ids))


# ----------------------------------------------------------------------------- `evalkit batches LOG`

def list_batches(lines: list[dict], cancel: bool = False, timeout: float = 120.0,
                 base_url: str | None = None) -> list[dict]:
    """Each batch a run log names, with its state at the provider; `cancel`: cancel the ones
    still running first (their finished requests are still collected by the next run). The
    provider's key goes only where `base_url` (the command line's) or the preset's default
    points: a log naming another endpoint is refused before anything is sent."""
    journal = Journal(lines, lambda rec: None)
    entries = list(journal.entries.values())
    check_endpoints(entries, base_url)
    return asyncio.run(_states(entries, cancel, timeout, base_url))


def check_endpoints(entries: list[Entry], base_url: str | None) -> None:
    """Refuse (one line) a log whose batches are at another endpoint than the one the user names:
    a crafted log must not send the user's key to a URL of its choosing."""
    from evalkit.core.errors import EvalkitError
    from evalkit.backends.presets import endpoint_of

    for e in entries:
        if e.batch_id is None:
            continue                  # nothing is asked about it
        expected = endpoint_of(e.model, base_url)
        if expected is None:
            raise EvalkitError(f"the log's batches are for {e.model!r}, which is not a provider with a Batch API "
                               "in evalkit; nothing was sent")
        if e.endpoint != expected:
            raise EvalkitError(f"the log's batches are at {e.endpoint}, but {e.model}'s key goes only to {expected}; "
                               f"nothing was sent (pass --base-url {e.endpoint} if you trust that endpoint)")


async def _states(entries: list[Entry], cancel: bool, timeout: float, base_url: str | None) -> list[dict]:
    from evalkit.backends import BackendOptions, get_backend
    from evalkit.backends.openai_batch import Gone

    apis, rows = {}, []
    try:
        for e in entries:
            row = {"batch_id": e.batch_id, "phase": e.phase, "requests": len(e.custom_ids), "file_id": e.file_id,
                   "settled": e.settled, "status": None, "completed": None, "failed": None}
            rows.append(row)
            if e.batch_id is None:
                row["status"] = "not created (the run stopped while creating it; a rerun adopts or creates it)"
                continue
            if e.model not in apis:       # the endpoint is the user's (checked), never the log's
                apis[e.model] = get_backend(e.model, BackendOptions(base_url=base_url, timeout=timeout)).batch_api()
            api = apis[e.model]
            if api is None:
                from evalkit.core.errors import EvalkitError

                raise EvalkitError(f"{e.model} has no Batch API in evalkit")
            try:
                state = await api.retrieve(e.batch_id)
            except Gone as exc:
                row["status"] = f"gone ({exc.reason})"
                continue
            if cancel and not state.done:
                state = await api.cancel(e.batch_id)
                row["cancelled_now"] = True
            row.update(status=state.status, completed=state.completed, failed=state.failed, total=state.total)
    finally:
        for api in apis.values():
            if api is not None:
                await api.aclose()
    return rows
