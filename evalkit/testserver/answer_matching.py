"""Which reply the test server's answer key gives a request.

`Policy` holds one answer key: exact conversations (`conversation_key`) answered first, then every
`match` text looked for in the asked text at once (an Aho-Corasick automaton over thousands of
questions), the one starting last winning, the longest if several start there, and
`--default-reply` when none is found; it also keeps each match's first-token logprobs.
"""

from __future__ import annotations

import json


class Policy:
    def __init__(self, answers: list[dict], default_reply: str):
        self.default_reply = default_reply
        self.replies: dict[str, str] = {}
        self.logprobs: dict[str, dict[str, float]] = {}
        self.exact: dict[str, str] = {}
        for entry in answers:
            if "messages" in entry:
                self.exact[conversation_key(entry["messages"])] = entry["reply"]
                continue
            self.replies[entry["match"]] = entry["reply"]
            if "logprobs" in entry:
                self.logprobs[entry["match"]] = entry["logprobs"]
        self.automaton = _automaton(self.replies) if self.replies else None

    def reply(self, text: str, messages: list | None = None) -> tuple[str, str | None]:
        if self.exact and messages is not None:
            key = conversation_key(messages)
            if key in self.exact:
                return self.exact[key], key
        best, best_rank = None, None
        for end, needle in self.automaton.iter(text) if self.automaton is not None else ():
            rank = (end - len(needle), len(needle))   # latest start first, then longest
            if best_rank is None or rank > best_rank:
                best, best_rank = needle, rank
        return (self.replies[best], best) if best is not None else (self.default_reply, None)


def _automaton(needles):
    """One matcher over every needle (thousands of questions; a loop per request would be slow)."""
    import ahocorasick_rs

    return _RsAutomaton(ahocorasick_rs.AhoCorasick(list(needles)), list(needles))


class _RsAutomaton:
    def __init__(self, ac, needles: list[str]):
        self.ac, self.needles = ac, needles

    def iter(self, text: str):
        """(end index, needle) of every occurrence, overlapping ones included."""
        for idx, start, end in self.ac.find_matches_as_indexes(text, overlapping=True):
            yield end - 1, self.needles[idx]


def conversation_key(messages: list) -> str:
    """A whole conversation as one string: roles and contents, in order."""
    return json.dumps([[m.get("role", "user"), m.get("content", "")] for m in messages], ensure_ascii=False)
