"""Run logs made for `evalkit view`'s tests and benchmark: many samples, or hostile ones.

A large log is written through the real writer's serialisation (`SampleResult.to_record`, `dumps`)
with a header taken from a real run, so it reads back exactly as a run's log does. Which samples
are right, wrong, unparsed or errors follows from the sample's number, so a test can say what the
page must show without reading the file again.
"""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.results.runlog import dumps
from evalkit.results.records import SampleResult

GROUPS = ("algebra", "biology", "chemistry", "history", "law")


def kind_of(i: int) -> str:
    """Sample i's fate: every 7th an error, every 11th (else) unparsed, every 17th (else) cut off by the
    token limit, the rest wrong (every 3rd) or right."""
    if i % 7 == 3:
        return "error"
    if i % 11 == 5:
        return "unparsed"
    if i % 17 == 8:
        return "truncated"
    return "wrong" if i % 3 == 0 else "correct"


def sample(i: int) -> SampleResult:
    kind, target = kind_of(i), "ABCD"[i % 4]
    question = f"Question {i}: which option is right for item {i}?"
    r = SampleResult(id=f"item-{i:06d}", group=GROUPS[i % len(GROUPS)], target=target, attempts=1,
                     model_s=round(0.1 + (i % 13) / 100, 4), messages=[{"role": "user", "content": question}],
                     usage={"prompt_tokens": 20 + i % 5, "completion_tokens": 3})
    if kind == "error":
        r.error, r.attempts = f"HTTP 500 from the server for item {i}", 3
    elif kind == "truncated":
        r.completion, r.score, r.finish_reason = "", 0.0, "length"
        r.truncated = "the token limit (max_tokens 16) ended the reply while it was thinking"
    elif kind == "unparsed":
        r.completion, r.parsed, r.score = f"I cannot tell ({i}).", False, 0.0
    else:
        answer = target if kind == "correct" else "ABCD"[(i + 1) % 4]
        r.completion, r.extracted, r.parsed = f"The answer is {answer}", answer, True
        r.score = 1.0 if kind == "correct" else 0.0
    return r


def header(eval_name: str = "synthetic", model: str = "openai/synthetic", scoring: str = "letter") -> dict:
    return {"type": "header", "run_key": "0" * 64, "eval": eval_name, "model": model, "seed": 0,
            "spec": {"name": eval_name, "metrics": ["accuracy"], "scoring": {"method": scoring}}}


def write_large(path: Path, n: int, model: str = "openai/synthetic") -> Path:
    """A finished-looking run of `n` samples (no summary line: the viewer reads the samples)."""
    with open(path, "wb") as fh:
        fh.write(dumps(header(model=model)))
        for i in range(n):
            fh.write(dumps(sample(i).to_record()))
    return path


def counts(n: int) -> dict[str, int]:
    kinds = [kind_of(i) for i in range(n)]
    # an unparsed or truncated reply scored 0, so it is wrong as well
    return {"all": n, "correct": kinds.count("correct"),
            "wrong": kinds.count("wrong") + kinds.count("unparsed") + kinds.count("truncated"),
            "error": kinds.count("error"), "unparsed": kinds.count("unparsed"), "truncated": kinds.count("truncated"),
            "invalid": 0}


def read_samples(path: Path) -> list[dict]:
    """A log's sample lines, last line per id, in first-seen order (as every evalkit reader keeps them)."""
    out: dict[str, dict] = {}
    for line in Path(path).read_bytes().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("type") == "sample":
            out[rec["id"]] = rec
    return list(out.values())
