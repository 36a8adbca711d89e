"""Dataset formats: one module per format, each with `load(spec, root, split) -> list[Sample]`.

`dataset.format: arc` in a spec imports `evalkit.loaders.arc`, so a new benchmark format is one
new file here plus registry YAML. A loader reads the real published layout, maps each record
to a `Sample`, and stops at the first broken row with an `EvalkitError` naming file and line.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path

from ..errors import EvalkitError


@lru_cache(maxsize=1)
def formats() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))


def get_loader(fmt: str):
    if fmt not in formats():
        raise EvalkitError(f"unknown dataset format {fmt!r}; known: {', '.join(formats())}")
    return importlib.import_module(f"{__name__}.{fmt}").load


def data_file(root: Path, name: str) -> Path:
    """A format's one known file: `root/name`, or `root` itself when the spec points at the file."""
    return root / name if root.is_dir() else root


def split_file(root: Path, split: str, ext: str) -> Path:
    """`root` itself if it is a file, else `root/<split>.<ext>` or `root/<split>`."""
    if root.is_file():
        return root
    for cand in (root / f"{split}.{ext}", root / split):
        if cand.is_file():
            return cand
    raise EvalkitError(f"no {split} split at {root} (looked for {root / f'{split}.{ext}'})")
