"""Tokens and dollars: prompt-token counts for dry runs, prices from `evalkit/registry/prices.yaml`.

Token counts use tiktoken with the model's encoding (o200k_base for models tiktoken does not
know). tiktoken downloads its encoding files on first use; offline, with no cached copy, counts
fall back to characters / 4 and every figure derived from them says so (`tokenizer` field).

A `Pricer` turns usage into dollars for one model, or knows it has no price for it (local
servers, unlisted models), in which case costs are reported as unknown rather than zero. Its
`tier` is "standard" or "batch" (the Batch API's prices, `--batch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import yaml

FALLBACK_TOKENIZER = "chars/4 estimate (tiktoken encoding unavailable offline)"


@lru_cache(maxsize=1)
def price_table() -> dict:
    from .places import package_registry

    with open(package_registry() / "prices.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@dataclass(frozen=True)
class Pricer:
    model: str
    input_per_m: float | None
    output_per_m: float | None
    tier: str = "standard"

    @classmethod
    def for_model(cls, model: str, tier: str = "standard") -> "Pricer":
        name = model.partition("/")[2] or model
        table = price_table()["models"]
        best = max((k for k in table if name.startswith(k)), key=len, default=None)
        if best is None or not model.startswith("openai/"):
            return cls(model, None, None, tier)
        prefix = "batch_" if tier == "batch" else ""
        row = table[best]
        return cls(model, row.get(prefix + "input"), row.get(prefix + "output"), tier)

    def source(self) -> dict:
        """Where this tier's prices come from (title, url, recorded)."""
        table = price_table()
        return table["batch_source"] if self.tier == "batch" else table["source"]

    @property
    def known(self) -> bool:
        return self.input_per_m is not None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if not self.known:
            return None
        return (prompt_tokens * self.input_per_m + completion_tokens * self.output_per_m) / 1e6


class TokenCounter:
    def __init__(self, model: str):
        self.name = FALLBACK_TOKENIZER
        self._enc = None
        try:
            import tiktoken

            model_name = model.partition("/")[2] or model
            try:
                self._enc = tiktoken.encoding_for_model(model_name)
            except KeyError:
                self._enc = tiktoken.get_encoding("o200k_base")
            self.name = f"tiktoken {self._enc.name}"
        except Exception:  # no network and no cached encoding: estimate instead
            self._enc = None

    def count_messages(self, messages: list[dict]) -> int:
        # ~3 tokens of framing per message plus 3 for the reply's priming, as OpenAI documents.
        total = 3
        for m in messages:
            content = m.get("content") or ""
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            total += 3 + self.count(content)
        return total

    def count(self, text: str) -> int:
        if self._enc is not None:
            return len(self._enc.encode(text, disallowed_special=()))
        return (len(text) + 3) // 4
