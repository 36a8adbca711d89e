"""What a multiple-choice answer must hold, checked on every loaded sample (run and validate alike).

A letter-scored eval compares the option label the model names with the sample's answer, so the
answer must be one of the labels its options get (`scoring.labels`, cut to the number of options:
A-D for four), or an index into the options (an integer in the record, mapped to its label by
the loader). Public datasets often give the option's text instead (`"answer": "Mercury"`): that is
accepted only when the spec says so (`dataset.answer_is: text`), which maps each text answer to
its option's label; otherwise it is refused here, with the fix in the message, rather than scored
0 for every sample. A sample without options cannot be asked as multiple choice at all.
"""

from __future__ import annotations

from dataclasses import replace

from evalkit.core.errors import EvalkitError
from evalkit.core.sample import Sample


# The generic formats people write evals in: their answers must name options the sample has. The
# formats of published benchmarks check their own labels (AGIEval keeps, with a warning, the one
# SAT-en label that names a fourth option of a three-option item, as published).
WRITTEN_FORMATS = ("jsonl", "csv")


def settle_answers(spec, samples: list[Sample]) -> list[Sample]:
    """The samples with text answers mapped to labels (`answer_is: text`); an EvalkitError naming
    the sample and the field for the first answer a letter-scored eval cannot read."""
    if spec.scoring.method != "letter":
        return samples
    text = spec.dataset.answer_is == "text"
    return [_settled(spec, s, text) for s in samples]


def _settled(spec, s: Sample, text: bool) -> Sample:
    field = spec.dataset.fields.get("answer", "answer")
    where = f"{spec.name}{f' ({spec.source_file})' if spec.source_file else ''}: sample {s.id}"
    labels = spec.scoring.labels
    if not s.choices:
        raise EvalkitError(f"{where} has no options, and a multiple-choice eval asks for one of them: map the "
                           "options' field with dataset.fields.choices (a list field, or a list of field names)")
    if len(s.choices) > len(labels):
        raise EvalkitError(f"{where} has {len(s.choices)} options but scoring.labels is {labels!r}")
    allowed = labels[: len(s.choices)]
    if text:
        hits = [i for i, c in enumerate(s.choices) if c == s.answer]
        if len(hits) != 1:
            what = "is the text of no option" if not hits else f"is the text of {len(hits)} options"
            raise EvalkitError(f"{where}: field {field!r}: answer {s.answer!r} {what} (dataset.answer_is: text "
                               f"wants each answer to be exactly one option's text)")
        return replace(s, answer=allowed[hits[0]])
    if _labels_in(s.answer, allowed if spec.dataset.format in WRITTEN_FORMATS else labels):
        return s
    span = f"{allowed[0]}-{allowed[-1]}" if len(allowed) > 1 else allowed
    if s.answer in s.choices:
        raise EvalkitError(f"{where}: field {field!r}: answer {s.answer!r} is the text of option "
                           f"{allowed[s.choices.index(s.answer)]}, not a label ({span}) or an index "
                           f"(0-{len(allowed) - 1}); add `answer_is: text` under `dataset:` to map option texts to labels")
    raise EvalkitError(f"{where}: field {field!r}: answer {s.answer!r} is not a label of its {len(allowed)} options "
                       f"({span}) nor an index (0-{len(allowed) - 1})")


def _labels_in(answer: str, allowed: str) -> bool:
    """One label, or several distinct ones for a multi-answer item ("AC", as the letter scorer reads them)."""
    return bool(answer) and len(set(answer)) == len(answer) and all(ch in allowed for ch in answer)
