"""`--shard I/N`: which samples one of N parallel runs takes, the same on every machine.

A sample belongs to shard `1 + (first 8 bytes of SHA-256(UTF-8 sample id), big-endian) mod N`.
That is a pure function of the id and N: it does not depend on the Python version (Python's own
`hash()` is salted per process), the machine, `--seed`, `--limit` or the order of the data.

`--limit` and `--exclude` apply first, exactly as in an unsharded run (leave out the excluded
ids, shuffle with `--seed`, keep the first `--limit`); the shard then keeps the samples of that
selection whose id falls in its slice, in the selection's order. So the N shards of one command
are disjoint, together they are exactly the samples of the same command without `--shard`, and
shard I of `--limit 100` is contained in shard I of `--limit 200`. With `--samples K` all K
completions of an item stay in its shard (pass@k needs them together).

Slices are balanced in expectation, not exactly: a shard of T samples gets T/N +- sqrt(T/N).
Each shard's log header records its position in the whole selection, so `evalkit merge` can put
the samples back in the unsharded order and summarise them through the same code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from evalkit.core.errors import EvalkitError

MAX_SHARDS = 100_000
_FORM = re.compile(r"\s*(\d{1,9})\s*/\s*(\d{1,9})\s*")


def unit_id(sample_id: str, j: int, per_item: int) -> str:
    """The id of completion j of a sample (the sample's own id when it gets one completion)."""
    return sample_id if per_item == 1 else f"{sample_id}#{j}"


@dataclass(frozen=True)
class Shard:
    index: int          # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, sample_id: str) -> bool:
        return shard_of(sample_id, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """`I/N` with 1 <= I <= N: one line naming the flag otherwise."""
    m = _FORM.fullmatch(text or "")
    index, count = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if not m or not 1 <= index <= count:
        raise EvalkitError(f"--shard {text!r}: give I/N with 1 <= I <= N, e.g. --shard 2/8 (the 2nd of 8 shards)")
    if count > MAX_SHARDS:
        raise EvalkitError(f"--shard {text!r}: at most {MAX_SHARDS} shards")
    return Shard(index, count)


def shard_of(sample_id: str, count: int) -> int:
    """The 1-based shard of a sample id among `count` shards (see the module docstring)."""
    digest = hashlib.sha256(sample_id.encode("utf-8", "surrogatepass")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class ShardPart:
    """What one shard took from the whole selection: for the log header and `evalkit merge`."""

    shard: Shard
    selected: int                   # samples in the whole (unsharded) selection
    ids: tuple[str, ...]            # this shard's sample ids, in selection order
    positions: tuple[int, ...]      # each one's 0-based position in the whole selection

    def header(self, unsharded_key: str) -> dict:
        return {"index": self.shard.index, "count": self.shard.count, "unsharded_run_key": unsharded_key,
                "selected": self.selected, "ids": list(self.ids), "positions": list(self.positions)}


def take(samples: list, shard: Shard) -> tuple[list, ShardPart]:
    """The samples of `shard` from the whole selection `samples` (which keeps its order)."""
    kept = [(i, s) for i, s in enumerate(samples) if shard.holds(s.id)]
    part = ShardPart(shard, len(samples), tuple(s.id for _, s in kept), tuple(i for i, _ in kept))
    return [s for _, s in kept], part
