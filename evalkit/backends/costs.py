"""Tokens and dollars: prompt-token counts for dry runs, prices from the registry's price tables.

Token counts use tiktoken with the model's encoding (o200k_base for models tiktoken does not
know). tiktoken downloads its encoding files on first use; offline, with no cached copy, counts
fall back to characters / 4 and every figure derived from them says so (`tokenizer` field).

Prices live in `registry/prices/*.yaml` (and `prices/` of each EVALKIT_REGISTRY folder,
whose tables replace the package's by name): each file maps a table name to its source (title,
publisher, URL, the date it was recorded) and its models. A provider names its table
(`prices:` in providers.yaml). A model matches an entry of the same name, or the entry followed
by a dated snapshot or "-latest" (gpt-4o-mini-2024-07-18 -> gpt-4o-mini) and nothing looser, so
a new model never borrows an older one's price.

A `Pricer` turns usage into dollars for one model, or knows it has no price for it (local
servers, unlisted models, providers without a recorded table), in which case costs are reported
as unknown rather than zero. Its `tier` is "standard", or "batch" for a provider's Batch API
(`--batch`), whose prices are a table of their own (`batch_prices:` in providers.yaml).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import Field

from evalkit.core.yamlfile import Strict

FALLBACK_TOKENIZER = "chars/4 estimate (tiktoken encoding unavailable offline)"
SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)")


class ModelPrice(Strict):
    input: float = Field(ge=0, le=10_000)      # USD per million prompt tokens
    output: float = Field(ge=0, le=10_000)     # USD per million completion tokens (reasoning included)
    cached_input: float | None = Field(None, ge=0, le=10_000)   # per million prompt tokens read from cache


class PriceTable(Strict):
    name: str = ""
    title: str
    publisher: str
    url: str = Field(pattern=r"^https://")
    recorded: str = Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$")
    note: str = ""
    models: dict[str, ModelPrice]
    source_file: str | None = None

    def price_of(self, name: str) -> ModelPrice | None:
        """The entry for `name`: the same name, or a dated snapshot / "-latest" of it."""
        if name in self.models:
            return self.models[name]
        for key, price in self.models.items():
            if name.startswith(key) and SNAPSHOT.fullmatch(name[len(key):]):
                return price
        return None


def price_tables() -> dict[str, PriceTable]:
    """Every price table by name: the package's, plug-ins' (evalkit.core.plugins), then each user
    registry's (same name: replaced).
    A broken table is one `file:line: ...` error."""
    from evalkit.core.plugins import definitions
    from evalkit.core.yamlfile import load_definitions

    return definitions("prices", "price table", lambda path, _: load_definitions(path, PriceTable, "price table"))


@dataclass(frozen=True)
class Pricer:
    model: str
    input_per_m: float | None
    output_per_m: float | None
    source: str | None = None      # the URL the prices were recorded from
    recorded: str | None = None    # when
    tier: str = "standard"         # or "batch"
    cached_per_m: float | None = None   # cached prompt tokens (None: priced as any prompt token)

    @classmethod
    def from_table(cls, model: str, table: str | None, tier: str = "standard") -> "Pricer":
        """`model`'s price in the named table (none when the table or the model is not there)."""
        found = price_tables().get(table) if table else None
        price = found.price_of(model.partition("/")[2] or model) if found else None
        if price is None or found is None:      # (a price comes only from a found table)
            return cls(model, None, None, tier=tier)
        return cls(model, price.input, price.output, found.url, found.recorded, tier, price.cached_input)

    @property
    def known(self) -> bool:
        return self.input_per_m is not None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float | None:
        """Dollars for these tokens: cached prompt tokens at the cached rate (where the table has
        one), the rest of the prompt at the input rate, the completion (its reasoning included:
        servers count it in completion_tokens) at the output rate."""
        if self.input_per_m is None or self.output_per_m is None:   # both or neither (from_table)
            return None
        cached = min(cached_tokens, prompt_tokens) if self.cached_per_m is not None else 0
        return ((prompt_tokens - cached) * self.input_per_m + cached * (self.cached_per_m or 0.0)
                + completion_tokens * self.output_per_m) / 1e6

    def cost_of(self, completion) -> float | None:
        """Dollars for one completion's usage; None without a completion or a known price."""
        if completion is None or not self.known:
            return None
        u = completion.usage
        return self.cost(u.get("prompt_tokens", 0), u.get("completion_tokens", 0), u.get("cached_tokens", 0))


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
