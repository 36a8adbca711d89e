"""OpenAI Evals samples: JSON Lines with `input` (a chat: a list of {role, content}, or a plain
string, which becomes one user message) and `ideal` (a string or a list of acceptable strings).

Any other string field of a record is kept for grader prompts (`{criteria}`-style placeholders).
A few-shot file (`split: fewshot`, `dataset.fields.fewshot: <path>`) holds records whose `sample`
is a chat to insert before the evaluated sample's last message. Sample ids are line numbers.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.sample import Sample
from evalkit.core.errors import EvalkitError
from evalkit.loaders.jsonl import records


def _chat(value, path: Path, lineno: int, key: str) -> list[dict]:
    """The chat as published (checked, not copied: registries hold hundreds of thousands of samples;
    the prompt builder copies the few it sends)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and value and all(type(m) is dict and "content" in m for m in value):
        return value
    raise EvalkitError(f"{path}:{lineno}: `{key}` must be a string or a list of chat messages with `content`")


def load(spec, root: Path, split: str) -> list[Sample]:
    if split == "fewshot":
        few = spec.dataset.fields.get("fewshot")
        if not few:
            raise EvalkitError(f"{spec.name}: few-shot examples need dataset.fields.fewshot (a JSONL path)")
        path = Path(few) if Path(few).is_absolute() else root.parent / few
        return [Sample(id=f"shot{lineno}", question="", answer="",
                       fields={"messages": _chat(rec.get("sample"), path, lineno, "sample")})
                for lineno, rec in records(path)]
    path = root
    if not path.is_file():
        raise EvalkitError(f"{spec.name}: samples file not found: {path}")
    out = []
    for lineno, rec in records(path):
        if "input" not in rec:
            raise EvalkitError(f"{path}:{lineno}: sample has no `input`")
        graded = spec.scoring.method == "graded"
        if "ideal" not in rec and not graded:
            raise EvalkitError(f"{path}:{lineno}: sample has no `ideal`")
        messages = _chat(rec["input"], path, lineno, "input")
        ideal = rec.get("ideal", "")          # a graded sample may have none
        if isinstance(ideal, str):
            ideals = [ideal]
        elif isinstance(ideal, list) and ideal and all(isinstance(i, str) for i in ideal):
            ideals = ideal
        else:
            raise EvalkitError(f"{path}:{lineno}: `ideal` must be a string or a non-empty list of strings")
        extra = {k: v for k, v in rec.items() if k not in ("input", "ideal") and isinstance(v, str)}
        out.append(Sample(id=str(lineno), question=messages[-1]["content"] if isinstance(messages[-1]["content"], str) else "",
                          answer=ideals[0], fields={**extra, "messages": messages, "ideals": ideals}))
    return out
