"""Loading samples from the real benchmark formats.

A `Sample` is plain data: an id, the question text, the options (multiple choice), the answer
(a letter for multiple choice, the ideal text otherwise), a group, and the raw record's fields
for prompt templates. Loaders turn a `DatasetSpec` into a list of samples and stop at the first
broken row with an error naming file and line: a row is never silently skipped.

Where data comes from: `$EVALKIT_DATA_DIR` if set (an offline mirror, e.g. `../shared/data`, used as
it is and never written), else the per-user cache, which the catalogued sources (`evalkit.datasets.catalogue`,
`evalkit data list`) are downloaded into and verified on first use.
"""

from __future__ import annotations

import os
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.core.sample import Sample  # noqa: F401  (a data type of this stage; evalkit.core.sample owns it)
from evalkit.specs.evals import EvalSpec


# ----------------------------------------------------------------------------- where data lives

def dataset_dir(spec: EvalSpec, download: bool = True) -> Path | None:
    """The file or folder a spec's dataset lives at, downloading a catalogued source if needed
    (with `download=False`, None instead of downloading: `validate` never fetches)."""
    raw = spec.dataset.path
    if raw.startswith(("./", "../")) and spec.source_file:
        return (Path(spec.source_file).parent / raw).resolve()
    if Path(raw).is_absolute():
        return Path(raw)
    from evalkit.datasets import catalogue as sources

    entries = sources.entries_for(raw, spec.subset)
    mirror = os.environ.get("EVALKIT_DATA_DIR")
    if mirror:
        path = Path(mirror) / raw
        if not path.exists() and not download and entries:
            return None                     # catalogued, just not in this mirror (DROP, MMMLU here)
        if not path.exists():
            raise EvalkitError(f"{spec.name}: data not found at {path}; EVALKIT_DATA_DIR={mirror} is an offline mirror, "
                               f"used as it is: point it at a folder holding {raw}"
                               + (", or unset it to download into the cache (see `evalkit data list`)" if entries else "")
                               + _beside_hint(spec))
        return path
    if not entries:
        path = sources.cache_root() / raw
        if path.exists():
            return path
        raise EvalkitError(f"{spec.name}: no source is catalogued for {raw} and it is not at {path}; "
                           f"set EVALKIT_DATA_DIR to a folder holding {raw}" + _beside_hint(spec))
    if not download and not all(sources.is_installed(ds) for ds in entries):
        return None
    for ds in entries:
        try:
            sources.install(ds)
        except EvalkitError as exc:
            raise EvalkitError(f"{exc.message}. To run without downloading, set EVALKIT_DATA_DIR to a folder "
                               f"holding {ds.name}/ (e.g. one filled by `evalkit data pull {ds.name}` elsewhere)") from None
    return sources.cache_root() / raw


def _beside_hint(spec: EvalSpec) -> str:
    """A relative path is under the data root; when the file sits beside the spec instead, say how to name it."""
    raw = spec.dataset.path
    if spec.source_file and (Path(spec.source_file).parent / raw).exists():
        return f" (a file beside the spec is written ./{raw})"
    return ""


# ----------------------------------------------------------------------------- loading

def load_samples(spec: EvalSpec, split: str | None = None) -> list[Sample]:
    """All samples of `split` (default: the spec's) in file order, via the spec's data format.

    Whatever a loader (a plug-in's too) trips over becomes one line naming the eval and its spec
    file: missing data, a file that is not UTF-8, one that cannot be read."""
    from evalkit.datasets.answers import settle_answers
    from evalkit.loaders import MissingData, get_loader

    root = dataset_dir(spec)
    where = f"{spec.name} ({spec.source_file})" if spec.source_file else spec.name
    try:
        return settle_answers(spec, get_loader(spec.dataset.format).load(spec, root, split or spec.dataset.split))
    except MissingData as exc:
        raise EvalkitError(f"{where}: {exc.message}") from None
    except UnicodeDecodeError as exc:
        raise EvalkitError(f"{where}: a data file under {root} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise EvalkitError(f"{where}: cannot read its data under {root} ({exc.strerror or exc})") from None
