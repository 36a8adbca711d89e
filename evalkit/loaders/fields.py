"""Records -> samples through `dataset.fields`, shared by the generic jsonl and csv formats.

`fields` maps sample fields to record fields: `id`, `question`, `answer`, `group`, and
`choices` (a list field, a dict field whose values are taken in key order, or a list of field
names). An integer answer to a multiple-choice question is an index into the choices.

Public: a loader plug-in that reads records of its own layout maps them with
`samples_from_records(spec, path, ((line, record), ...))`, exactly as the built-in formats do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from evalkit.core.errors import EvalkitError
from evalkit.core.sample import Sample, short_intern

NO_FIELDS: dict = {}  # shared by every sample without extra fields; never mutated


def samples_from_records(spec, path: Path, records: Iterable[tuple[int, dict]]) -> list[Sample]:
    """`spec` is the eval's EvalSpec (loaders sit below the spec module and only read it)."""
    f = {"question": "question", "answer": "answer", **spec.dataset.fields}
    mapped = {n for v in f.values() for n in (v if isinstance(v, list) else [v])}
    out = []
    for lineno, rec in records:
        def get(key: str, name: str, rec: dict = rec, lineno: int = lineno):
            if name not in rec:
                raise EvalkitError(f"{path}:{lineno}: record has no field {name!r} (dataset.fields.{key})")
            if rec[name] is None:
                raise EvalkitError(f"{path}:{lineno}: field {name!r} is null (dataset.fields.{key})")
            return rec[name]

        choices = None
        if "choices" in f:
            spec_c = f["choices"]
            if isinstance(spec_c, list):
                choices = short_intern(str(get("choices", c)) for c in spec_c)
            else:
                raw = get("choices", spec_c)
                if isinstance(raw, dict):
                    raw = [raw[k] for k in sorted(raw)]
                if not isinstance(raw, list):
                    raise EvalkitError(f"{path}:{lineno}: field {spec_c!r} is not a list of choices")
                choices = short_intern(map(str, raw))
        answer = get("answer", f["answer"])
        if isinstance(answer, int) and not isinstance(answer, bool) and choices is not None:
            labels = spec.scoring.labels
            if not 0 <= answer < len(choices):
                raise EvalkitError(f"{path}:{lineno}: answer index {answer} is out of range for {len(choices)} choices")
            answer = labels[answer]
        group = str(get("group", f["group"])) if "group" in f else None
        if spec.subset and group != spec.subset:
            continue
        extra = {k: v for k, v in rec.items() if k not in mapped and isinstance(v, (str, int, float))} or NO_FIELDS
        if "images" in f:
            extra = {**extra, "images": _images(get("images", f["images"]), path, lineno)}
        out.append(Sample(
            id=str(get("id", f["id"])) if "id" in f else f"{path.stem}/{lineno}",
            question=str(get("question", f["question"])),
            choices=choices,
            answer=str(answer),
            group=group,
            fields=extra,
        ))
    return out


def _images(value, path: Path, lineno: int) -> tuple[str, ...]:
    """An item's image files (a path or a list of paths, relative to the data file), checked to exist."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise EvalkitError(f"{path}:{lineno}: the images field must be a file name or a list of file names")
    found = []
    for name in names:
        file = (path.parent / name).resolve()
        if not file.is_file():
            raise EvalkitError(f"{path}:{lineno}: image {name!r} not found at {file}")
        found.append(str(file))
    return tuple(found)
