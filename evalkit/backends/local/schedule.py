"""Which waiting requests run together, and how many tokens a batch may hold.

The oldest waiting request (the anchor) always runs next, so nothing starves. With it go the
waiting requests of the same kind (option probabilities, or generation with the same sampling)
that share a long prefix of token ids with it: the prefix is computed once (if the prefix cache
does not have it yet) and each prompt only adds its own suffix. The shared length chosen is the
longest one that at least half of those related requests have, so one question that happens to
start like the anchor's does not shrink the prefix for the rest. Requests sharing nothing with
anyone run together if their lengths are close (cold batches, no prefix).

Among candidates, those whose suffix length is closest to the anchor's go first, while the padded
batch (rows x longest suffix) stays within the token budget. The budget is tuned by measurement
(`BudgetTuner`): it starts at a size per device and doubles while the useful tokens per second
rise by 10% or more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


MIN_SHARED = 32          # fewer shared tokens than this is not worth a separate prefix pass
TOP_K = 50               # alternatives returned per position (the engine's top-k; the backend's capability)


@dataclass(eq=False)
class Item:
    kind: tuple                    # requests run together only when this is equal
    ids: list[int]
    payload: object = None         # what the caller needs back (request, future)


@dataclass
class Plan:
    members: list[Item]
    prefix: int                    # shared prefix length P: the batch runs ids[P:] of each member
    warm_from: int | None = None   # compute ids[warm_from:P] of the anchor first (None: P is cached)


def plan(pending: list[Item], cached: Callable[[list[int]], int] | None, budget: int, max_batch: int) -> Plan:
    """The next batch: the anchor, its related requests and the shared length (see the module
    docstring). `cached` tells how many leading ids have kept states; None: no prefix reuse."""
    anchor = pending[0]
    cap = len(anchor.ids) - 1                               # the last token always runs
    same = [r for r in pending[1:] if r.kind == anchor.kind]
    if cached is None:
        return Plan([anchor] + _by_length(anchor, same, 0, budget, max_batch), 0)
    from evalkit.backends.local.prefix import common_length      # torch: only once a model runs

    shared = {id(r): common_length(anchor.ids, r.ids) for r in same}
    related = sorted((n for n in shared.values() if n >= MIN_SHARED), reverse=True)
    have = min(cached(anchor.ids), cap)
    if related:
        length = min(related[(len(related) - 1) // 2], cap)
        candidates = [r for r in same if shared[id(r)] >= length and len(r.ids) > length]
        warm = have if have < length else None
    elif have >= MIN_SHARED:
        length, candidates, warm = have, [], None
    else:
        length, warm = 0, None
        alone = _alone(same)
        candidates = [r for r in same if id(r) in alone and cached(r.ids) < MIN_SHARED]
    return Plan([anchor] + _by_length(anchor, candidates, length, budget, max_batch), length, warm)


def _alone(items: list[Item]) -> set[int]:
    """The items sharing fewer than MIN_SHARED leading ids with every other one (found between
    neighbours in sorted order, where the longest shared prefixes sit side by side)."""
    ordered = sorted(items, key=lambda r: r.ids)
    from evalkit.backends.local.prefix import common_length

    near = [common_length(a.ids, b.ids) >= MIN_SHARED for a, b in zip(ordered, ordered[1:])]
    return {id(r) for i, r in enumerate(ordered)
            if not (i > 0 and near[i - 1]) and not (i < len(near) and near[i])}


def _by_length(anchor: Item, candidates: list[Item], length: int, budget: int, max_batch: int) -> list[Item]:
    """The candidates closest in suffix length to the anchor, while the padded batch fits the budget."""
    own = len(anchor.ids) - length
    chosen: list[Item] = []
    widest = own
    for r in sorted(candidates, key=lambda r: abs(len(r.ids) - length - own)):
        w = max(widest, len(r.ids) - length)
        if len(chosen) + 2 > max_batch or (len(chosen) + 2) * w > budget:
            break
        chosen.append(r)
        widest = w
    return chosen


@dataclass
class BudgetTuner:
    """Padded tokens per batch, chosen by measuring useful tokens per second at each size.

    It measures `rounds` batches at the current size, then tries double; it keeps the larger size
    if that ran 10% faster and goes on doubling, else returns to the smaller one for good. Only
    batches that filled at least half the budget count, since a batch cut short by what was
    waiting says nothing about the size. `fixed` skips tuning.
    """

    budget: int
    ceiling: int = 16384
    rounds: int = 3
    fixed: bool = False
    seen: dict[int, list[float]] = field(default_factory=dict)    # size -> [tokens, seconds, batches]
    settled: bool = False

    def record(self, padded: int, useful: int, seconds: float) -> None:
        if self.fixed or self.settled or padded * 2 < self.budget or seconds <= 0:
            return
        s = self.seen.setdefault(self.budget, [0.0, 0.0, 0])
        s[0], s[1], s[2] = s[0] + useful, s[1] + seconds, s[2] + 1
        if s[2] < self.rounds:
            return
        lower = self.seen.get(self.budget // 2)
        if lower is not None and lower[2] >= self.rounds and s[0] / s[1] < 1.1 * lower[0] / lower[1]:
            self.budget //= 2
            self.settled = True
        elif self.budget * 2 <= self.ceiling:
            self.budget *= 2
        else:
            self.settled = True
