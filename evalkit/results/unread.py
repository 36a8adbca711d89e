"""Answers nobody read: replies the scorer could not parse, blank replies, grades naming no class.

A reply that the scorer cannot read scores 0 (an option-letter or numeric eval) or nothing (a
model-graded eval whose grader named no valid class): either way the headline number says less
than it seems to. So every summary counts them (`unparsed`: every reply not read, of which
`blank`: empty or whitespace only, and `invalid_grades`: a grader reply naming no class), and:

- more than `WARN_SHARE` (10%) of the answered samples unread: a warning, in the summary's notes
  (text, `--json`, the log's summary line, the report) and on stderr, with one example reply
  (cut to `EXAMPLE_CHARS`) and the format the scorer expects;
- more than `FAIL_SHARE` (50%) unread: the run cannot be trusted, exit 1 (the number is mostly
  the scorer's failure to read, not the model's answers);
- invalid grades count against `--fail-on-error` as errors do (evalkit.runs.session);
- no sample produced a score: exit 1.

The shares are of answered samples (those without an error); docs/results.md states the rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.results.records import SampleResult, Summary

WARN_SHARE = 0.10
FAIL_SHARE = 0.50
EXAMPLE_CHARS = 160


def is_invalid_grade(r: "SampleResult") -> bool:
    """A grader reply that named no valid class: logged, never scored (evalkit.scoring.graded)."""
    return r.error is None and r.score is None and r.parsed is False


def is_blank(r: "SampleResult") -> bool:
    """An answered sample whose answer was empty (the log line says `blank: true`)."""
    return r.error is None and bool(r.blank)


def example(results: list["SampleResult"]) -> str | None:
    """The first unread reply (or grader reply) this run holds the text of, cut to EXAMPLE_CHARS,
    as one line (samples resumed from a log are read without their text)."""
    for r in results:
        if r.error is None and r.parsed is False:
            text = (r.grader or {}).get("reply") if is_invalid_grade(r) else ("" if r.blank else r.completion)
            if text is None:
                continue
            line = repr(" ".join(str(text).split()))
            return line if len(line) <= EXAMPLE_CHARS else line[: EXAMPLE_CHARS - 4] + "...'"
    return None


def expected_format(scoring: dict) -> str:
    """What the eval's scorer reads, in words (from the spec's `scoring` as a dict)."""
    method, extract = scoring.get("method"), scoring.get("extract")
    if extract == "answer_line":
        where = "a last line 'Answer: ...' holding "
    elif extract:
        where = f"text matching /{extract}/ around "
    else:
        where = ""
    what = {"letter": f"an option letter ({scoring.get('labels', 'ABCD')}), e.g. 'Answer: C'",
            "numeric": "a number (the last number in the reply counts)",
            "graded": "one of the grader's classes on the line its eval_type names (the grader's reply)",
            "mc2": "log-probabilities of the option letters"}.get(str(method), f"an answer the {method} scorer can match")
    return where + what


def unread_note(unparsed: int, answered: int, sample: str | None, scoring: dict) -> str | None:
    """The warning note when more than WARN_SHARE of the answered samples were not read."""
    if not answered or unparsed <= WARN_SHARE * answered:
        return None
    share = unparsed / answered
    loud = "MOST REPLIES WERE NOT READ, the score is not the model's: " if share > FAIL_SHARE else ""
    return (f"{loud}{unparsed} of {answered} answered samples ({share:.0%}) could not be read and count as wrong "
            f"or unscored (more than {WARN_SHARE:.0%}); expected {expected_format(scoring)}; "
            + (f"for example {sample}" if sample else "the replies are in the log"))


def unread_failure(s: "Summary") -> str | None:
    """Why the unread share makes the run untrustworthy (more than FAIL_SHARE), or None."""
    answered = s.scored + s.invalid_grades
    if answered and s.unparsed > FAIL_SHARE * answered:
        return (f"{s.eval}: {s.unparsed} of {answered} answered samples could not be read (more than "
                f"{FAIL_SHARE:.0%}: see docs/results.md); the score says more about the answer format than the model")
    return None
