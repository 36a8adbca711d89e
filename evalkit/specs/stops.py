"""Stop strings: where the reply to a few-shot prompt ends, and the cut that applies them.

A few-shot prompt is shot, separator, shot, ..., item. A base model that has answered the item
goes on writing the next shot ("B\\n\\nQuestion: ... Answer: D"), and a scorer that reads the
last answer marker would score the question the model invented. The text that starts a next
shot is known from the spec: the separator, then the template's literal text before its first
field. So GSM8K's `Question: {question}\\nAnswer:` gives `\\n\\nQuestion:`, MMLU's
`{question}\\n{choices}\\nAnswer:` gives the separator alone, `\\n\\n`.

Which stops a run uses (`resolve`), the first that applies:
1. `--no-stop`: none; `--stop TEXT` (repeatable): those;
2. the spec's `generation.stop` (`[]`: none);
3. derived from the template (`derive`), except where a reply is expected to hold blank lines
   or there is no format to continue: a chat prompt (the sample's own messages), a template that
   is only fields (`{question}`), code and model-graded replies; and a stop that is only
   whitespace where replies may have paragraphs (chain of thought, or examples whose target is
   more than `{answer}`: an explanation, a worked solution).

The stops are part of the run's identity (they are in the effective spec and in the request's
`Sampling.stop`, which is sent where the endpoint accepts it). Whatever the endpoint did with them,
`cut` applies them on evalkit's side before scoring: a reply is cut before the earliest stop.
"""

from __future__ import annotations

import string
from dataclasses import replace

from evalkit.core.errors import EvalkitError

MAX_STOPS = 4                  # OpenAI's limit; most OpenAI-compatible servers take as many
MAX_STOP_CHARS = 200
NO_DERIVED_STOP = ("code", "graded")      # scoring methods whose replies have blank lines of their own
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def derive(prompt, method: str) -> list[str]:
    """The stop that starts the next shot of this prompt format ([] where none is safe)."""
    if prompt.chat or method in NO_DERIVED_STOP:
        return []
    try:
        parts = list(string.Formatter().parse(prompt.template))
    except ValueError:
        return []                # a broken template: building the prompt reports it
    if not any(literal for literal, *_ in parts):
        return []                # only fields: no format a model would continue
    lead = parts[0][0].rstrip() if parts else ""
    stop = (prompt.separator + lead)[:MAX_STOP_CHARS]          # a start of the next shot is one too
    if not stop or (not stop.strip() and _long_replies(prompt)):
        return []
    return [stop]


def _long_replies(prompt) -> bool:
    """Replies may hold blank lines of their own: the model reasons (chain of thought), or the
    examples' targets carry more than the answer (an explanation, a worked solution)."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(prompt.target_format) if f}
    except ValueError:
        return True
    return prompt.chain_of_thought or bool(fields - {"answer"})


def resolve(own: list[str] | None, prompt, method: str, cli: tuple[str, ...] | None) -> list[str]:
    """The run's stops: the command line's, else the spec's `own`, else derived (module docstring)."""
    if cli is not None:
        return list(cli)
    if own is not None:
        return list(own)
    return derive(prompt, method)


def cut(text: str, stops) -> str:
    """`text` before the earliest occurrence of any stop (the whole text when none occurs)."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return text[: min(found)] if found else text


def at_stop(completion, stops):
    """The completion with its text cut at the first stop (the same object when nothing is cut)."""
    if completion is None or not stops:
        return completion
    text = cut(completion.text, stops)
    return completion if text == completion.text else replace(completion, text=text)


def check(stops: list[str]) -> list[str]:
    """Refuse stops no endpoint takes: empty, longer than MAX_STOP_CHARS, more than MAX_STOPS."""
    if len(stops) > MAX_STOPS:
        raise ValueError(f"{len(stops)} stop strings; endpoints take at most {MAX_STOPS}")
    for s in stops:
        if not s:
            raise ValueError("an empty stop string would stop every reply before it starts")
        if len(s) > MAX_STOP_CHARS:
            raise ValueError(f"a stop string of {len(s)} characters; at most {MAX_STOP_CHARS}")
    return stops


def parse_flag(value: str) -> str:
    """A `--stop` value with the escapes a shell cannot type easily: \\n, \\t, \\r, \\\\."""
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1] if i + 1 < len(value) else ""
            if nxt not in ESCAPES:
                raise EvalkitError(f"--stop {value!r}: unknown escape \\{nxt} (use \\n, \\t, \\r or \\\\)")
            out.append(ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def from_flags(values: tuple[str, ...], none: bool) -> tuple[str, ...] | None:
    """`--stop` values and `--no-stop` as the run's stops (None: the spec decides)."""
    if none and values:
        raise EvalkitError("--stop and --no-stop: give one of them")
    if none:
        return ()
    if not values:
        return None
    try:
        return tuple(check([parse_flag(v) for v in values]))
    except ValueError as exc:
        raise EvalkitError(f"--stop: {exc}") from None
