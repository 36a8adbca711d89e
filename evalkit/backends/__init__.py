"""Backends: one file per kind of endpoint behind one small async contract (`backends.base`).

`get_backend("provider/name")` resolves the provider lazily, in this order:

1. evalkit's own in-process backends below (`local/`);
2. the provider presets of `registry/providers.yaml` (and EVALKIT_REGISTRY folders):
   `openai/`, `anthropic/`, `azure/`, `vllm/`, ... all served by the one OpenAI-compatible
   backend, configured by their entry (URL, key variable, capabilities);
3. any installed package's entry point in the group `evalkit.backends` (name = provider, value =
   "module:Class").

The three are one table of the generic registry `evalkit.core.plugins.BACKENDS`: evalkit's own
(1 and 2) win, a plug-in takes one of their names only with an entry-point name ending in
`.replaces` (docs/plugins.md). A new OpenAI-compatible provider is one YAML entry; a new kind of
backend is one module plus one line here, or one entry point. No preset can take the name `local`.
"""

from __future__ import annotations

import inspect
from dataclasses import replace

from evalkit.core.errors import EvalkitError
from evalkit.core.plugins import BACKENDS
from evalkit.backends.base import Backend, BackendError, BackendOptions, Capabilities, Completion, FatalError, RefusedError, Request, SampleError, Sampling, TransientError

# The backend contract is re-exported here, so a plug-in imports it from `evalkit.backends`.
__all__ = ["Backend", "BackendError", "BackendOptions", "Capabilities", "Completion", "FatalError", "RefusedError", "Request",
           "SampleError", "Sampling", "TransientError", "get_backend", "plugins", "providers"]

PROVIDERS = {
    "local": "evalkit.backends.local:LocalBackend",
}
PRESET_BACKEND = "evalkit.backends.openai_api:OpenAIBackend"


def plugins() -> dict[str, str]:
    """provider -> "module:Class" of installed packages' entry points that serve a provider."""
    return {name: o.module for name, o in BACKENDS.origins().items() if not o.builtin}


def builtin_providers() -> dict[str, str]:
    """evalkit's own providers: `local`, then the presets (the OpenAI-compatible backend)."""
    from evalkit.backends.presets import registry_providers

    presets = {name: PRESET_BACKEND for name in registry_providers() if name not in PROVIDERS}
    return {**PROVIDERS, **presets}


def providers() -> dict[str, str]:
    """Every provider name -> "module:Class" that serves it (presets: the OpenAI-compatible
    backend), after the registry's precedence rule."""
    return {name: o.module for name, o in BACKENDS.origins().items()}


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
    if BACKENDS.origin(provider).builtin and known[provider] == PRESET_BACKEND:
        from evalkit.backends.presets import registry_providers

        options = replace(options, preset=registry_providers()[provider])
    return _construct(BACKENDS.get(provider), name, options)


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
