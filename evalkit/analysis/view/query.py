"""The viewer's questions to an index: a filtered, searched, sorted page of samples, with the count
behind each filter; and two runs paired by sample id, with `evalkit compare`'s own numbers.

Free-text search reads the log's lines again (the index keeps no text): a line whose bytes cannot
contain the query is skipped without parsing, the others are parsed and searched in their prompt,
reply and target. The last few searches are kept, so paging through results reads nothing again.
"""

from __future__ import annotations

from dataclasses import dataclass

from evalkit.analysis.compare import compare_logs
from evalkit.core.errors import EvalkitError
from evalkit.analysis.view.index import BIT, FLAGS, LogIndex, Row, json_fragment, sample_text

SORTS = {
    "line": lambda r: r.line,
    "id": lambda r: r.id,
    "score": lambda r: (r.score is None, r.score or 0.0),
    "time": lambda r: r.time_s,
    "cost": lambda r: (r.cost is None, r.cost or 0.0),
    "tokens": lambda r: r.tokens,
}
MAX_PAGE = 500


@dataclass
class Query:
    filter: str = "all"
    group: str | None = None
    q: str = ""
    sort: str = "line"
    desc: bool = False
    offset: int = 0
    limit: int = 100


def parse_query(params: dict[str, str], filters: tuple[str, ...]) -> Query:
    """A page request's parameters, checked; a bad one is a ValueError naming it."""
    q = Query(params.get("filter", "all"), params.get("group") or None, params.get("q", ""),
              params.get("sort", "line"), params.get("desc") == "1")
    if q.filter not in ("all", *filters):
        raise ValueError(f"unknown filter {q.filter!r}")
    if q.sort not in SORTS:
        raise ValueError(f"unknown sort {q.sort!r}")
    try:
        q.offset, q.limit = int(params.get("offset", 0)), int(params.get("limit", 100))
    except ValueError:
        raise ValueError("offset and limit are whole numbers") from None
    if q.offset < 0 or not 0 < q.limit <= MAX_PAGE:
        raise ValueError(f"offset must be >= 0 and limit 1-{MAX_PAGE}")
    return q


class Searcher:
    """Free-text search over one index's samples, the last few answers kept."""

    def __init__(self, index: LogIndex):
        self.index = index
        self._cache: dict[str, set[int]] = {}

    def matches(self, text: str) -> set[int]:
        needle = text.lower()
        if needle not in self._cache:
            if len(self._cache) >= 8:
                self._cache.pop(next(iter(self._cache)))
            self._cache[needle] = self._scan(needle)
        return self._cache[needle]

    def _scan(self, needle: str) -> set[int]:
        fragment, out = json_fragment(needle), set()
        for pos in range(len(self.index.rows)):
            raw = self.index.line(pos).lower()
            if fragment not in raw and b"\\u" not in raw:      # \u escapes: the bytes cannot tell
                continue
            if needle in sample_text(self.index.record(pos)).lower():
                out.add(pos)
        return out


def row_json(pos: int, r: Row) -> dict:
    return {"n": pos, "id": r.id, "group": r.group, "score": r.score, "flags": r.flag_names(), "line": r.line,
            "time_s": round(r.time_s, 4), "cost": r.cost, "tokens": r.tokens}


def select(index: LogIndex, searcher: Searcher, q: Query) -> dict:
    """One page of samples and, over the group and search chosen, how many each filter keeps."""
    cand = [p for p, r in enumerate(index.rows) if q.group is None or r.group == q.group]
    if q.q:
        found = searcher.matches(q.q)
        cand = [p for p in cand if p in found]
    rows = index.rows
    counts = {"all": len(cand), **{f: sum(1 for p in cand if rows[p].flags & BIT[f]) for f in FLAGS}}
    chosen = cand if q.filter == "all" else [p for p in cand if rows[p].flags & BIT[q.filter]]
    if q.sort != "line" or q.desc:
        key = SORTS[q.sort]
        chosen.sort(key=lambda p: key(rows[p]), reverse=q.desc)
    page = chosen[q.offset:q.offset + q.limit]
    return {"total": len(chosen), "offset": q.offset, "counts": counts, "rows": [row_json(p, rows[p]) for p in page]}


# --------------------------------------------------------------------------- two runs

KINDS = ("worse", "better", "same", "base_only", "new_only", "unscored")


@dataclass(slots=True)
class Pair:
    id: str
    group: str | None
    kind: str
    base: int | None            # position in the base index
    new: int | None


@dataclass
class Pairing:
    base_run: int
    new_run: int
    comparison: dict | None     # `compare_logs`'s result, as `evalkit compare --json` prints it
    error: str | None           # why compare could not pair them (its own message)
    pairs: list[Pair]


def _scored(r: Row | None) -> bool:
    """As `evalkit compare` counts a sample: it has a score and did not end in an error."""
    return r is not None and r.score is not None and not r.flags & BIT["error"]


def pair_runs(base_run: int, base: LogIndex, new_run: int, new: LogIndex) -> Pairing:
    """Every id of either run, marked as compare sees it: flipped worse or better, unchanged, scored
    in one run only, or scored in neither."""
    try:
        comparison, error = compare_logs(str(base.path), str(new.path), list_flips=len(base.rows) + len(new.rows)), None
    except EvalkitError as exc:
        comparison, error = None, str(exc)
    flipped = comparison["flipped"] if comparison else {"worse": [], "better": []}
    worse, better = set(flipped["worse"]), set(flipped["better"])
    ids = list(base.by_id) + [i for i in new.by_id if i not in base.by_id]
    pairs = []
    for sid in ids:
        b, n = base.by_id.get(sid), new.by_id.get(sid)
        br, nr = (base.rows[b] if b is not None else None), (new.rows[n] if n is not None else None)
        if sid in worse or sid in better:
            kind = "worse" if sid in worse else "better"
        elif _scored(br) and _scored(nr):
            kind = "same" if comparison else "paired"
        else:
            kind = "base_only" if _scored(br) else "new_only" if _scored(nr) else "unscored"
        row = br or nr
        assert row is not None                   # a pair has at least one side
        pairs.append(Pair(sid, row.group, kind, b, n))
    return Pairing(base_run, new_run, comparison, error, pairs)


def select_pairs(p: Pairing, base: LogIndex, new: LogIndex, kind: str, q: str, offset: int, limit: int) -> dict:
    """One page of pairs of `kind` ("all" for every one) whose id contains `q`, and each kind's count."""
    chosen = [x for x in p.pairs if not q or q.lower() in x.id.lower()]
    counts = {"all": len(chosen), **{k: sum(1 for x in chosen if x.kind == k) for k in (*KINDS, "paired")}}
    if kind != "all":
        chosen = [x for x in chosen if x.kind == kind]

    def side(index: LogIndex, pos: int | None) -> dict | None:
        return None if pos is None else row_json(pos, index.rows[pos])

    rows = [{"id": x.id, "group": x.group, "kind": x.kind, "base": side(base, x.base), "new": side(new, x.new)}
            for x in chosen[offset:offset + limit]]
    return {"total": len(chosen), "offset": offset, "counts": counts, "rows": rows}
