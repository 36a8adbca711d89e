"""One item of a benchmark, as plain data: what every stage after loading works on.

A `Sample` is an id, the question text, the options (multiple choice), the answer (a letter for
multiple choice, the ideal text otherwise), a group, and the raw record's other fields for prompt
templates. Loaders (evalkit.loaders) make them; prompts, scorers and metrics read them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Sample:
    """One item. `fields` holds the record's other fields for prompt templates (read-only)."""

    id: str
    question: str
    answer: str
    choices: tuple[str, ...] | None = None
    group: str | None = None
    fields: dict = field(default_factory=dict, hash=False, compare=False)


def short_intern(values) -> tuple[str, ...]:
    """Options such as "True, False" repeat across thousands of rows: share one copy of each short one."""
    return tuple(sys.intern(v) if len(v) <= 40 else v for v in values)
