"""A catalogue entry whose files are too many to write out one by one (MATH: 5,000 JSON files).

`listing: {url: <pinned URL prefix>, manifest: <file>}` in a `datasets.yaml` entry stands for one
`files` entry per line of the manifest, a text file beside that catalogue (or in the package's
registry) with `<sha256> <size> <path>` a line, `#` comments allowed. Each file is fetched from
`url + path` and checked against its own sha256 and size like any other catalogued file, so a
pull of the entry is exactly the pull of 5,000 written-out entries, without a 1.4 MB YAML file
that every command would parse.
"""

from __future__ import annotations

import re
from pathlib import Path

from evalkit.core.errors import EvalkitError

_LINE = re.compile(r"([0-9a-f]{64})\s+(\d+)\s+(\S+)")


def manifest_path(name: str, catalogue_file: str) -> Path:
    """The manifest `name` beside the catalogue that names it, else in the package's registry."""
    from evalkit.core.places import package_registry

    for folder in ([Path(catalogue_file).parent] if catalogue_file else []) + [package_registry()]:
        if (folder / name).is_file():
            return folder / name
    raise EvalkitError(f"{catalogue_file or 'datasets.yaml'}: listing manifest {name!r} not found beside it "
                       f"or in {package_registry()}")


def expand(listing: dict, catalogue_file: str) -> dict[str, dict]:
    """The `files` entries a listing stands for, by path."""
    if not isinstance(listing, dict) or not isinstance(listing.get("url"), str) or not isinstance(listing.get("manifest"), str):
        raise ValueError("listing needs url (a pinned URL prefix) and manifest (a file name)")
    path = manifest_path(listing["manifest"], catalogue_file)
    files = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.fullmatch(line.strip())
        if m is None:
            raise EvalkitError(f"{path}:{lineno}: want <sha256> <size> <path>")
        files[m[3]] = {"url": listing["url"] + m[3], "sha256": m[1], "size": int(m[2])}
    return files
