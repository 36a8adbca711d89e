"""Backends: one file per kind of endpoint behind one small async contract (`backends.base`).

`get_backend("provider/name")` resolves the provider lazily, in this order:

1. evalkit's own in-process backends below (`local/`);
2. the provider presets of `registry/providers.yaml` (and EVALKIT_REGISTRY folders):
   `openai/`, `anthropic/`, `azure/`, `vllm/`, ... all served by the one OpenAI-compatible
   backend, configured by their entry (URL, key variable, capabilities);
3. any installed package's entry point in the group `evalkit.backends` (name = provider, value =
   "module:Class").

A new OpenAI-compatible provider is one YAML entry; a new kind of backend is one module plus one
line here, or one entry point. Neither a preset nor a plug-in can take the name `local`.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import replace
from functools import lru_cache

from evalkit.core.errors import EvalkitError
from evalkit.backends.base import Backend, BackendError, BackendOptions, Capabilities, Completion, FatalError, RefusedError, Request, SampleError, Sampling, TransientError

PROVIDERS = {
    "local": "evalkit.backends.local:LocalBackend",
}
PRESET_BACKEND = "evalkit.backends.openai_api:OpenAIBackend"


@lru_cache(maxsize=1)
def plugins() -> dict[str, str]:
    """provider -> "module:Class" of installed packages' entry points."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group="evalkit.backends")}


def providers() -> dict[str, str]:
    """Every provider name -> "module:Class" that serves it (presets: the OpenAI-compatible
    backend); evalkit's own come first, so a plug-in cannot replace one."""
    from evalkit.backends.presets import registry_providers

    presets = {name: PRESET_BACKEND for name in registry_providers() if name not in PROVIDERS}
    return {**plugins(), **presets, **PROVIDERS}


def get_backend(model: str, options: BackendOptions | None = None, **fields) -> Backend:
    """The backend serving `model` ("provider/name"), made as `Backend(name, options)`
    (`backends.base.Backend` documents the constructor); `fields` are BackendOptions' fields."""
    provider, sep, name = model.partition("/")
    known = providers()
    if not sep or not name:
        raise EvalkitError(f"--model {model!r}: expected provider/name, e.g. openai/gpt-4o-mini ({', '.join(known)})")
    if provider not in known:
        raise EvalkitError(f"--model {model!r}: unknown provider {provider!r}; known: {', '.join(sorted(known))} "
                           "(`evalkit providers` lists them)")
    options = options or BackendOptions(**fields)
    module, _, cls = known[provider].partition(":")
    if known[provider] == PRESET_BACKEND and provider not in PROVIDERS:
        from evalkit.backends.presets import registry_providers

        options = replace(options, preset=registry_providers()[provider])
    return _construct(getattr(importlib.import_module(module), cls), name, options)


def _construct(cls, name: str, options: BackendOptions) -> Backend:
    """`cls(name, options)`; a plug-in written before BackendOptions gets the fields as keywords."""
    try:
        takes_options = "options" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        takes_options = True
    if takes_options:
        return cls(name, options)
    old = {k: getattr(options, k) for k in ("base_url", "timeout", "max_reply_bytes", "max_connections", "concurrency")}
    return cls(name, **old, **({"preset": options.preset} if options.preset is not None else {}))
