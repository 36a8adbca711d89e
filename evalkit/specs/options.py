"""The options every scorer's typed options share: the `scoring:` block of a spec.

It lives with the specs (not with the scorers) so that a spec can be typed without importing the
scoring stage; each scorer subclasses it with `method: Literal[<name>]` (evalkit.scoring).
"""

from __future__ import annotations

from pydantic import Field

from evalkit.core.yamlfile import Strict


class ScorerOptions(Strict):
    """What every scorer's options have; each scorer subclasses it with `method: Literal[name]`."""

    method: str
    labels: str = Field("ABCD", description="option letters: how {choices} are labelled in prompts and read in replies")

    def wants(self) -> tuple[str | None, int]:
        """What the request must ask for: (option labels to answer by probability, or None;
        top log-probabilities per generated token, 0 for none)."""
        return None, 0
