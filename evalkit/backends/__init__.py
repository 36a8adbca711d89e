"""Backends: one file per provider behind one small async contract (`backends.base`).

`get_backend("provider/name")` finds the provider's class lazily: evalkit's own providers below,
then any installed package's entry point in the group `evalkit.backends` (name = provider,
value = "module:Class"). A new backend is one new module plus one line here, or one entry point.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from ..errors import EvalkitError
from .base import (Backend, BackendError, Capabilities, Completion, FatalError, Request, SampleError,  # noqa: F401
                   Sampling, TransientError)

PROVIDERS = {
    "openai": "evalkit.backends.openai_api:OpenAIBackend",
    "local": "evalkit.backends.local:LocalBackend",
}


@lru_cache(maxsize=1)
def providers() -> dict[str, str]:
    """provider -> "module:Class": evalkit's own, then plug-ins' (an installed package cannot
    replace a built-in provider)."""
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group="evalkit.backends")}
    return {**found, **PROVIDERS}


def get_backend(model: str, **options) -> Backend:
    provider, sep, name = model.partition("/")
    known = providers()
    if not sep or not name:
        raise EvalkitError(f"--model {model!r}: expected provider/name, e.g. openai/gpt-4o-mini ({', '.join(known)})")
    if provider not in known:
        raise EvalkitError(f"--model {model!r}: unknown provider {provider!r}; known: {', '.join(sorted(known))}")
    module, _, cls = known[provider].partition(":")
    return getattr(importlib.import_module(module), cls)(name, **options)
