"""Dataset formats: one module per format, each with `load(spec, root, split) -> list[Sample]`.

`dataset.format: arc` in a spec imports `evalkit.loaders.arc`, so a new benchmark format is one
new file here plus registry YAML, or one module in another package registered under the
entry-point group `evalkit.loaders` (name = format, value = module; a name ending in `.replaces`
replaces the built-in format of that name, any other built-in name is refused: docs/plugins.md).
Formats are served by the generic registry `evalkit.core.plugins.LOADERS`. A loader reads the real
published layout, maps each record to a `Sample`, and stops at the first broken row with an
`EvalkitError` naming file and line. A module may set `GROUP`, the name of the field its samples
are grouped by (MMLU's `subject`), so a spec's `group_by` can name it.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import ModuleType

from evalkit.core.errors import EvalkitError
from evalkit.core.plugins import LOADERS, package_modules


def builtin_formats() -> dict[str, str]:
    """This package's format modules (format -> dotted path), for the generic registry."""
    return package_modules(__name__)


def formats() -> list[str]:
    return sorted(LOADERS.names())


def get_loader(fmt: str) -> ModuleType:
    if fmt not in LOADERS:
        raise EvalkitError(f"unknown dataset format {fmt!r}; known: {', '.join(formats())}")
    return LOADERS.get(fmt)


def data_file(root: Path, name: str) -> Path:
    """A format's one known file: `root/name`, or `root` itself when the spec points at the file."""
    return root / name if root.is_dir() else root


class MissingData(EvalkitError):
    """The data a spec names is not there (the caller adds which eval and spec file)."""


def split_file(root: Path, split: str, ext: str) -> Path:
    """`root` itself if it is a file, else `root/<split>.<ext>` or `root/<split>`."""
    if root.is_file():
        return root
    for cand in (root / f"{split}.{ext}", root / split):
        if cand.is_file():
            return cand
    raise MissingData(f"no {split} split at {root} (looked for {root / f'{split}.{ext}'})")


def text_lines(path: Path, encoding: str = "utf-8"):
    """The lines of a text file, each decoded on its own, so a file that is not UTF-8 (latin-1,
    UTF-16) is one error naming its file and line instead of a decoder's traceback. Lines end at
    \\n, \\r\\n or a bare \\r (some registry files use old Mac endings), as Python's text mode does.
    Latin-1 maps bytes one to one, so splitting there and re-encoding gives each line's exact bytes."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise EvalkitError(f"{path}: cannot read ({exc.strerror})") from None
    with io.TextIOWrapper(fh, encoding="latin-1", newline=None) as lines:
        for lineno, wide in enumerate(lines, 1):
            raw = wide.encode("latin-1")
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise EvalkitError(f"{path}:{lineno}: not {encoding.upper()} text (byte {exc.start} of the line: {exc.reason})") from None
            yield line.removeprefix("\ufeff") if lineno == 1 else line

