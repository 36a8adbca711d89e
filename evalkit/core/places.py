"""Where evalkit's files live: its registry, the user's registries, the cache, data and run logs.

One home for every location, each overridable by an environment variable:

| what | default | variable |
|---|---|---|
| the registry shipped in the package (evals, exams, graders, providers, prices) | `registry/` | — |
| more registry folders, searched after the package's | none | `EVALKIT_REGISTRY` (joined by `os.pathsep`) |
| downloads, converted models, the response cache | `~/.cache/evalkit` | `EVALKIT_CACHE_DIR` (or `XDG_CACHE_HOME`) |
| benchmark data | `<cache>/data` | `EVALKIT_DATA_DIR` (an offline mirror) |
| run logs | `~/.local/state/evalkit/runs` | `--log-dir` (or `XDG_STATE_HOME`) |

The package registry is found through `importlib.resources`, so a wheel installed anywhere finds
it without the source tree. Which files of a registry folder are read, and plug-in packages'
folders, are `evalkit.core.plugins`' business.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def package_registry() -> Path:
    """The registry folder shipped with this evalkit: `registry/` beside the package in a source
    checkout (so a checkout run with PYTHONPATH reads its own), else the installed `evalkit.registry`."""
    checkout = Path(__file__).resolve().parents[2] / "registry"
    if (checkout / "evals").is_dir() and (checkout / "__init__.py").is_file():
        return checkout
    return Path(str(resources.files("evalkit.registry")))


def user_registries() -> list[Path]:
    """Folders named by $EVALKIT_REGISTRY, in order."""
    return [Path(p) for p in os.environ.get("EVALKIT_REGISTRY", "").split(os.pathsep) if p]


def cache_dir() -> Path:
    if os.environ.get("EVALKIT_CACHE_DIR"):
        return Path(os.environ["EVALKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "evalkit"


def data_root() -> Path:
    env = os.environ.get("EVALKIT_DATA_DIR")
    return Path(env) if env else cache_dir() / "data"


def default_log_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "evalkit" / "runs"
