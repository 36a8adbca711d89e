"""Key/value states of prompt prefixes, kept in a radix tree over token ids, bounded by bytes.

Every prompt the local backend runs leaves its key/value states here, split along the token ids it
shares with earlier prompts: two 5-shot MMLU prompts of one subject share their first ~500 tokens
(instruction and examples) and become one node for those plus one small node per question. A new
prompt walks the tree as far as its ids match (ending inside a node is fine: the node's states
are sliced) and only the rest of it goes through the model. Nothing here knows about any
benchmark: sharing is found from the ids alone.

Each node holds, per layer, keys and values of shape [heads, tokens, head_dim] for its own span of
ids. Nodes are cloned when split, so a node's bytes are its own and dropping it frees them. When
the total passes the budget the least recently used leaves go first (a parent outlives its
children: it is used whenever they are).
"""

from __future__ import annotations

import itertools

import torch

KV = list[tuple[torch.Tensor, torch.Tensor]]        # per layer: (keys, values), [heads, tokens, head_dim]


def common_length(a, b) -> int:
    """How many leading items two id sequences share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    x = torch.as_tensor(a[:n]) != torch.as_tensor(b[:n])
    diff = torch.nonzero(x)
    return int(diff[0]) if len(diff) else n


def _slice(kv: KV, start: int, end: int) -> KV:
    return [(k[:, start:end].clone(), v[:, start:end].clone()) for k, v in kv]


def _nbytes(kv: KV) -> int:
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)


class _Node:
    __slots__ = ("ids", "kv", "children", "parent", "used", "nbytes")

    def __init__(self, ids: tuple, kv: KV, parent: "_Node | None"):
        self.ids, self.kv, self.parent = ids, kv, parent
        self.children: dict[int, _Node] = {}
        self.used = 0
        self.nbytes = _nbytes(kv) if kv else 0


class PrefixCache:
    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.root = _Node((), [], None)     # the root holds no ids, so no states
        self.total = 0
        self.clock = itertools.count(1)
        self.evicted = 0

    def _walk(self, ids) -> list[tuple[_Node, int]]:
        """The nodes `ids` runs through, each with how many of its ids match (the last may be partial)."""
        path, node, pos = [], self.root, 0
        while pos < len(ids):
            child = node.children.get(ids[pos])
            if child is None:
                break
            n = common_length(child.ids, ids[pos:pos + len(child.ids)])
            path.append((child, n))
            pos += n
            if n < len(child.ids):
                break
            node = child
        return path

    def match(self, ids) -> int:
        """How many leading ids of `ids` have cached states."""
        return sum(n for _, n in self._walk(ids))

    def get(self, ids, length: int) -> KV:
        """The states of ids[:length] (which must be cached), as one tensor pair per layer."""
        parts, got, now = [], 0, next(self.clock)
        for node, n in self._walk(ids[:length]):
            node.used = now
            parts.append([(k[:, :n], v[:, :n]) for k, v in node.kv])
            got += n
        if got < length:
            raise KeyError(f"prefix of {length} tokens is not cached (only {got})")
        if len(parts) == 1:
            return parts[0]
        return [(torch.cat([p[i][0] for p in parts], dim=1), torch.cat([p[i][1] for p in parts], dim=1))
                for i in range(len(parts[0]))]

    def _split(self, node: _Node, at: int) -> None:
        """Cut `node` after `at` ids: it keeps the head, a new child takes the tail and the children."""
        tail = _Node(node.ids[at:], _slice(node.kv, at, len(node.ids)), node)
        tail.children, tail.used = node.children, node.used
        for c in tail.children.values():
            c.parent = tail
        self.total -= node.nbytes
        node.ids, node.kv = node.ids[:at], _slice(node.kv, 0, at)
        node.nbytes = _nbytes(node.kv)
        node.children = {tail.ids[0]: tail}
        self.total += node.nbytes + tail.nbytes

    def insert(self, ids, start: int, kv: KV) -> None:
        """Keep the states of ids[start:] (`kv`, one pair per layer) after the cached ids[:start]; if
        those were evicted meanwhile (a budget smaller than one prompt), nothing is kept."""
        ids = tuple(ids)
        node, pos, now = self.root, 0, next(self.clock)
        for child, n in self._walk(ids):
            if n < len(child.ids):
                self._split(child, n)
            child.used, node, pos = now, child, pos + n
        if pos < start or pos >= len(ids) or self.budget <= 0:
            return
        leaf = _Node(ids[pos:], [(k[:, pos - start:].clone(), v[:, pos - start:].clone()) for k, v in kv], node)
        leaf.used = now
        node.children[ids[pos]] = leaf
        self.total += leaf.nbytes
        self._evict()

    def _evict(self) -> None:
        while self.total > self.budget:
            leaves = [n for n in self._nodes() if not n.children]
            if not leaves:
                return
            victim = min(leaves, key=lambda n: n.used)
            del victim.parent.children[victim.ids[0]]
            self.total -= victim.nbytes
            self.evicted += 1

    def _nodes(self):
        stack = list(self.root.children.values())
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.children.values())
