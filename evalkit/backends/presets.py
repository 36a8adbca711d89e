"""Provider presets: which URL, key variable and capabilities `--model NAME/...` means.

A provider is data, not code: one entry in `registry/providers.yaml` (plus any
`providers.yaml` in an EVALKIT_REGISTRY folder, whose entries add to or replace the package's
by name), read into a typed `Provider`. The one OpenAI-compatible backend serves every preset;
this module only decides how to reach the endpoint (`connection`) and what it can do
(`Provider.capabilities`), so a new OpenAI-compatible provider is a few lines of YAML.

Models differ within a provider: a preset's `models:` rules say, per name pattern, which models
reason (and so get a reasoning budget on top of the eval's answer budget), how the token limit
is spelled (`max_completion_tokens` for OpenAI's reasoning models), which request fields they
refuse (never sent; the summary says so), whether they return log-probabilities, and how effort
is asked for (each level's JSON fragment). The first matching rule applies; a user's
providers.yaml entry holding only `models:` puts its rules before the preset's own.

Where a request goes, in order: `--base-url`, the preset's URL variable (OPENAI_BASE_URL,
AZURE_OPENAI_ENDPOINT), the preset's documented default. The key is the first of the preset's
key variables that is set. A hosted provider's own URL without its key is one line naming the
variable, before anything is sent; a local server, or any URL the user chose, gets a placeholder
(the client insists on some key, and those servers accept any).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from evalkit.backends.base import Capabilities, FatalError
from evalkit.backends.costs import Pricer
from evalkit.core.yamlfile import Strict, load_definitions

CLAIMS = ("endpoint", "logprobs", "seed", "system_messages", "images")
WIRE_FIELDS = {"model", "messages", "temperature", "max_tokens", "top_p", "stop", "seed", "logprobs", "top_logprobs"}
REFUSABLE = ("temperature", "top_p", "stop", "seed", "logprobs", "top_logprobs")
EFFORT_LEVELS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
PLACEHOLDER_KEY = "no-key"


class Source(Strict):
    """Where a claim comes from: a page, the day it was checked, and what it says (our words)."""

    url: str = Field(pattern=r"^https://")
    checked: date
    says: str = ""


class Caps(Strict):
    max_top_logprobs: int | None = Field(ge=1, le=20)   # null: no log-probabilities at all
    seed: bool
    system_messages: bool
    images: bool

    def capabilities(self) -> Capabilities:
        return Capabilities(max_top_logprobs=self.max_top_logprobs, seed=self.seed,
                            system_messages=self.system_messages, images=self.images,
                            option_probs=self.max_top_logprobs is not None)


class ModelRule(Strict):
    """What the models whose names match one of `match` (shell patterns such as `gpt-5*`) do
    differently from their provider's defaults. The first rule that matches a model applies."""

    match: list[str] = Field(min_length=1)
    reasoning: bool = False            # thinks before answering: the limit sent adds a reasoning budget
    token_limit: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    refuses: list[Literal["temperature", "top_p", "stop", "seed", "logprobs", "top_logprobs"]] = \
        Field(default_factory=list)    # fields the endpoint answers 400 to for these models: never sent
    logprobs: bool = True              # false: these models return no log-probabilities
    # How effort is asked for: each level's JSON fragment, merged into the request body. A string
    # "{budget}" inside it becomes the reasoning budget in tokens (an int).
    effort: dict[Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"], dict] = \
        Field(default_factory=dict)
    source: Source
    thinking_refuses: list[Literal["temperature", "top_p", "stop", "seed", "logprobs", "top_logprobs"]] = \
        Field(default_factory=list)    # further fields refused while thinking is asked for (an effort but none)
    notes: list[str] = Field(default_factory=list)

    def matches(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.match)


class ModelsPatch(Strict):
    """An entry of a user's providers.yaml that holds only `models:`: rules put before the
    preset's own (so they win), without restating the preset."""

    name: str = ""
    models: list[ModelRule] = Field(min_length=1)
    source_file: str | None = None


class AzureSettings(Strict):
    version_env: str = "OPENAI_API_VERSION"
    default_version: str


class Provider(Strict):
    name: str = ""
    title: str
    client: Literal["openai", "azure"] = "openai"
    base_url: str | None = Field(None, pattern=r"^https?://")
    base_url_env: str | None = None
    key_env: list[str] = Field(default_factory=list)
    key_required: bool = True
    local: bool = False
    azure: AzureSettings | None = None
    docs: str = Field(pattern=r"^https://")
    prices: str | None = None          # a table in prices/ (its source and date are there)
    batch_prices: str | None = None    # the table of its Batch API's prices (`--batch`), if it has one
    price_note: str = ""               # without a table: why none is recorded
    renames: dict[str, str] = Field(default_factory=dict)
    capabilities: Caps
    sources: dict[Literal["endpoint", "logprobs", "seed", "system_messages", "images"], Source] = \
        Field(default_factory=dict)
    models: list[ModelRule] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    source_file: str | None = None

    def rule_for(self, model: str) -> ModelRule | None:
        """The first model rule matching `model` (None: the provider's defaults apply)."""
        return next((r for r in self.models if r.matches(model)), None)

    @model_validator(mode="after")
    def _coherent(self) -> "Provider":
        if self.client == "azure" and self.azure is None:
            raise ValueError("client: azure needs an `azure:` block (default_version)")
        if self.client == "openai" and self.base_url is None:
            raise ValueError("base_url is required (only client: azure takes its endpoint from a variable)")
        unknown = sorted(set(self.renames) - WIRE_FIELDS)
        if unknown:
            raise ValueError(f"renames: {', '.join(unknown)} is not a request field evalkit sends")
        if self.key_required and not self.key_env:
            raise ValueError("key_required needs at least one variable in key_env")
        if self.prices and self.price_note:
            raise ValueError("prices names a table; price_note is only for a provider without one")
        return self

    def key_hint(self) -> str:
        """The key variable(s), for messages: "GEMINI_API_KEY (or GOOGLE_API_KEY)"."""
        if not self.key_env:
            return "the server's key (this provider reads none; --model openai/... sends OPENAI_API_KEY)"
        return self.key_env[0] + (f" (or {', '.join(self.key_env[1:])})" if len(self.key_env) > 1 else "")


@dataclass(frozen=True)
class Connection:
    """How to reach one model: the client kind, URL, key, and for Azure the API version."""

    kind: str
    base_url: str
    key: str
    endpoint: str                  # for logs and cache keys: never the key
    api_version: str | None = None


def registry_providers() -> dict[str, Provider]:
    """The presets by name: the package's providers.yaml, plug-ins' (evalkit.core.plugins), then
    each user registry's."""
    from evalkit.core.plugins import definitions

    return definitions("providers", "provider", _provider_file)


def _provider_file(path: Path, known: dict[str, Provider]) -> tuple[dict, list[str]]:
    """One providers.yaml: whole presets, and `models:`-only patches of presets read before."""
    patches, problems = load_definitions(path, ModelsPatch, "provider", only=lambda body: set(body) == {"models"})
    presets, more = load_definitions(path, Provider, "provider", only=lambda body: set(body) != {"models"})
    for name, patch in patches.items():
        base = presets.get(name) or known.get(name)
        if base is None:
            problems.append(f"{path}: {name}: a `models:`-only entry adds rules to a provider, and there is "
                            f"no provider {name!r} (known: {', '.join(sorted(known)) or 'none'})")
            continue
        presets[name] = base.model_copy(update={"models": [*patch.models, *base.models]})
    return presets, problems + more


def base_url_of(p: Provider, base_url: str | None = None) -> str:
    """The URL requests to `p` go to: --base-url, the preset's URL variable, its default ("" if none)."""
    return (base_url or (os.environ.get(p.base_url_env) if p.base_url_env else None) or p.base_url or "").rstrip("/")


def endpoint_of(model: str, base_url: str | None = None) -> str | None:
    """Where requests for "provider/name" would go, without a key or a connection (dry runs);
    None for providers that are not presets (local/, plug-ins) or an Azure endpoint not given."""
    provider, _, name = model.partition("/")
    p = registry_providers().get(provider)
    url = base_url_of(p, base_url) if p else ""
    if p is None or not url:
        return None
    return f"{url}/openai/deployments/{name}" if p.client == "azure" else url


def connection(p: Provider, model_name: str, base_url: str | None = None, api_key: str | None = None) -> Connection:
    """Where and how `p/model_name` is reached; a missing endpoint or key is a `FatalError`."""
    url = base_url_of(p, base_url)
    if not url:
        raise FatalError(f"{p.base_url_env} is not set (the {p.title.split(',')[0]} endpoint, e.g. "
                         f"https://NAME.openai.azure.com); or pass --base-url")
    key = api_key or next((os.environ[v] for v in p.key_env if os.environ.get(v)), None)
    if not key:
        if p.key_required and (p.base_url is None or url == p.base_url.rstrip("/")):
            where = f"{p.name}/ models at {url}" if p.base_url else f"{p.name}/ models"
            nor = f" (nor {', '.join(p.key_env[1:])})" if len(p.key_env) > 1 else ""
            raise FatalError(f"{p.key_env[0]} is not set{nor}: needed for {where} (for another server pass --base-url)")
        key = PLACEHOLDER_KEY
    if p.client == "azure" and p.azure is not None:    # (validated: client azure has an azure block)
        version = os.environ.get(p.azure.version_env) or p.azure.default_version
        return Connection("azure", url, key, f"{url}/openai/deployments/{model_name}", version)
    return Connection("openai", url, key, url)


def pricer_for(model: str, tier: str = "standard") -> Pricer:
    """Dollars per token for "provider/name" from its provider's price table, without opening a
    connection (dry runs need no key); unknown for providers without one (local/, plug-ins)."""
    preset = registry_providers().get(model.partition("/")[0])
    table = (preset.batch_prices if tier == "batch" else preset.prices) if preset else None
    return Pricer.from_table(model, table, tier)
