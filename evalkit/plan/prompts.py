"""Sample + spec -> chat messages.

A prompt is built from small pieces of the spec's `prompt` section:

    [system message]
    user: preamble + shot_1 + target_1 + separator + ... + shot_k + target_k + separator + item
          [+ chain-of-thought instruction]

`item` is `prompt.template` filled with the sample (`{question}`, `{choices}` rendered with
`choice_format`, `{number}` its position in the prompt, and every field of the raw record, e.g.
MMLU's `{subject_name}`), and `target`
is `target_format` filled with the answer. For MMLU this reproduces the original prompt of
Hendrycks et al.: "The following are multiple choice questions (with answers) about <subject>.",
then the examples each ending in "Answer: X", then the question ending in "Answer:".

Few-shot examples come from another split. When the eval groups samples (MMLU subjects) the
examples are taken from the same group; `sampling: first` keeps file order, `random` draws them
with a generator seeded by the run seed and the sample id, so a run is reproducible.
"""

from __future__ import annotations

import random
import string
from collections import defaultdict

from evalkit.core.sample import Sample
from evalkit.core.errors import EvalkitError
from evalkit.specs.evals import EvalSpec


class FewShotPool:
    """Few-shot candidates. From a split of their own (MMLU's dev, AGIEval's few-shot file) they
    are taken from the sample's own group when it has any there; drawn from the evaluated split
    itself (benchmarks that ship no train split here) they come from the whole split, never the
    sample itself."""

    def __init__(self, examples: list[Sample], same_split: bool = False):
        self.all = examples
        self.same_split = same_split
        self.by_group: dict[str | None, list[Sample]] = defaultdict(list)
        if not same_split:
            for ex in examples:
                self.by_group[ex.group].append(ex)

    def choose(self, spec: EvalSpec, sample: Sample, seed: int) -> list[Sample]:
        fs = spec.prompt.fewshot
        if fs is None or fs.k == 0:
            return []
        pool = self.by_group.get(sample.group) or self.all
        extra = 1 if self.same_split else 0          # room to drop the sample itself
        if len(pool) - extra < fs.k:
            raise EvalkitError(f"{spec.name}: sample {sample.id} needs {fs.k} few-shot examples from split "
                               f"{fs.split!r} but only {len(pool) - extra} are available for group {sample.group!r}")
        if fs.sampling == "first":
            picked = pool[: fs.k + extra]
        else:
            picked = random.Random(f"{seed}:{sample.id}").sample(pool, fs.k + extra)
        if self.same_split:
            picked = [ex for ex in picked if ex.id != sample.id][: fs.k]
        return picked


def _fill(template: str, ctx: dict, spec: EvalSpec, sample: Sample, what: str) -> str:
    try:
        return string.Formatter().vformat(template, (), ctx)
    except KeyError as exc:
        raise EvalkitError(f"{spec.name}: prompt.{what} uses {{{exc.args[0]}}}, which sample {sample.id} does not have "
                           f"(available: {', '.join(sorted(ctx))})") from None
    except (ValueError, IndexError) as exc:
        raise EvalkitError(f"{spec.name}: prompt.{what} is not a valid template ({exc}); write literal braces as {{{{ }}}}") from None


def _context(spec: EvalSpec, sample: Sample) -> dict:
    ctx = dict(sample.fields)
    ctx["question"] = sample.question
    ctx["answer"] = sample.answer
    if sample.choices is not None:
        labels = spec.scoring.labels
        if len(sample.choices) > len(labels):
            raise EvalkitError(f"{spec.name}: sample {sample.id} has {len(sample.choices)} options but scoring.labels is {labels!r}")
        ctx["choices"] = "\n".join(
            spec.prompt.choice_format.format(label=labels[i], text=text) for i, text in enumerate(sample.choices))
    return ctx


def render_item(spec: EvalSpec, sample: Sample, with_answer: bool, number: int = 1) -> str:
    ctx = _context(spec, sample)
    ctx["number"] = number          # the item's position in the prompt, for layouts like "Problem 3."
    text = _fill(spec.prompt.template, ctx, spec, sample, "template")
    if with_answer:
        text += _fill(spec.prompt.target_format, ctx, spec, sample, "target_format")
    return text


def build_messages(spec: EvalSpec, sample: Sample, shots: list[Sample]) -> list[dict]:
    p = spec.prompt
    if p.chat:
        # The sample is already a chat (OpenAI Evals' `input`); few-shot examples are chats too,
        # inserted before its last message, as OpenAI Evals' Match does.
        messages = sample.fields["messages"]
        if shots:
            messages = messages[:-1] + [m for ex in shots for m in ex.fields["messages"]] + messages[-1:]
        return [{"role": m.get("role") or "user", "content": m["content"], **({"name": m["name"]} if m.get("name") else {})}
                for m in messages]
    parts = [render_item(spec, ex, with_answer=True, number=i) for i, ex in enumerate(shots, 1)]
    parts.append(render_item(spec, sample, with_answer=False, number=len(shots) + 1))
    user = _fill(p.preamble, _context(spec, sample), spec, sample, "preamble") + p.separator.join(parts)
    if p.chain_of_thought:
        user += "\n\n" + p.cot_instruction
    messages = [{"role": "system", "content": p.system}] if p.system else []
    images = sample.fields.get("images")
    if images:
        messages.append({"role": "user", "content": _with_images(user, images, p.vision)})
    else:
        messages.append({"role": "user", "content": user})
    return messages


def _with_images(text: str, images: tuple[str, ...], vision: bool):
    """An item's images: embedded as image parts for a vision model; for a text-only run (`--no-vision`)
    a line `IMAGE: <name>.png` per image instead, the name a hash of the file so it says nothing
    about the content (as the GPT-4 report did for text-only runs)."""
    import base64
    import hashlib
    import mimetypes

    if not vision:
        tags = [f"IMAGE: {hashlib.sha256(open(f, 'rb').read()).hexdigest()[:12]}{_suffix(f)}" for f in images]
        return text + "\n" + "\n".join(tags)
    parts = [{"type": "text", "text": text}]
    for f in images:
        kind = mimetypes.guess_type(f)[0] or "image/png"
        data = base64.b64encode(open(f, "rb").read()).decode()
        parts.append({"type": "image", "media_type": kind, "data": data})   # evalkit's image part (backends.base)
    return parts


def _suffix(path: str) -> str:
    dot = path.rfind(".")
    return path[dot:].lower() if dot > path.rfind("/") else ""
