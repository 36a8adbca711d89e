"""DROP in its official JSON format: {passage_id: {"passage", "qa_pairs": [{"question", "query_id",
"answer", "validated_answers"}]}}.

An answer is a number, a list of spans, or a date {day, month, year}; it is turned into strings as
the official evaluation script does (`number` -> one string, `spans` -> the spans, `date` ->
"day month year"). The sample's target is the JSON list of every distinct gold answer (the
original plus the validated ones), each a list of strings; the `drop` scorer takes the best F1
and EM over them. The question text is the passage followed by the question; the sample's group
is the passage id.
"""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.core.sample import Sample
from evalkit.core.errors import EvalkitError

GROUP = "passage"   # samples are grouped by this field (a spec's group_by may name it)


def answer_strings(answer: dict) -> tuple[str, ...]:
    if answer.get("number") not in (None, ""):
        return (str(answer["number"]),)
    if answer.get("spans"):
        return tuple(answer["spans"])
    date = answer.get("date") or {}
    return (f"{date.get('day', '')} {date.get('month', '')} {date.get('year', '')}",)


def load(spec, root: Path, split: str) -> list[Sample]:
    path = root if root.is_file() else root / f"drop_dataset_{split}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalkitError(f"{spec.name}: no DROP {split} file at {path}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalkitError(f"{path}: not valid DROP JSON ({exc})") from None
    if not isinstance(data, dict):
        raise EvalkitError(f"{path}: DROP data must map passage ids to passages")
    out = []
    for pid, item in data.items():
        try:
            passage, pairs = item["passage"], item["qa_pairs"]
        except (KeyError, TypeError):
            raise EvalkitError(f"{path}: passage {pid!r} lacks passage or qa_pairs") from None
        for n, qa in enumerate(pairs):
            try:
                golds = [answer_strings(qa["answer"])] + [answer_strings(a) for a in qa.get("validated_answers", [])]
                question, qid = qa["question"], qa["query_id"]
            except (KeyError, TypeError, AttributeError):
                raise EvalkitError(f"{path}: passage {pid!r} question {n} lacks question, query_id or answer") from None
            unique = list(dict.fromkeys(g for g in golds if g and g[0].strip()))
            if not unique:
                raise EvalkitError(f"{path}: question {qid} has no non-empty gold answer")
            out.append(Sample(id=qid, question=question, answer=json.dumps([list(g) for g in unique]), group=pid,
                              fields={"passage": passage, "answer_text": " | ".join(unique[0])}))
    return out
