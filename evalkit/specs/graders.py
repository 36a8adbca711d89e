"""Grader specs: a rubric prompt for a grader model, the choices it may answer, and their scores.

    registry/graders/closedqa.yaml
    closedqa:
      prompt: |-
        ... [Question]: {input} ... [Submission]: {completion} ... [Criterion]: {criteria} ...
      choice_strings: YN                 # a string of one-character choices, or a list
      choice_scores: {Y: 1.0, N: 0.0}    # or `from_strings` (the choices are numbers); optional
      eval_type: cot_classify            # classify | cot_classify | classify_cot

The placeholders are `{input}` (what the evaluated model was asked), `{completion}` (its reply),
`{ideal}` (the reference answer) and `{criteria}` (per eval; pairwise graders use `{completion1}`
and `{completion2}`). `eval_type` says where the grader puts its choice, and evalkit appends an
instruction saying so:

- `classify`: the choice only;
- `cot_classify`: reasoning first, the choice on the last line (read from the last line up);
- `classify_cot`: the choice on the first line, then the reasoning (read from the first line down);
- `classify_plain`: read as `classify`, but nothing is appended: the prompt, a published rubric
  used as written (SimpleQA's), says itself how to answer.

A line matches a choice when, stripped of punctuation and surrounding space, it starts or ends
with it (OpenAI Evals' `starts_or_endswith`, the definition their registry was written against).
A reply in which no line names a valid choice is *invalid*: recorded and counted, never scored.

This is the same YAML as OpenAI Evals' `modelgraded/*.yaml`; their files load unchanged.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from evalkit.core.errors import EvalkitError
from evalkit.core.plugins import Folder, Origin, admit_definitions, sourced_files
from evalkit.core.yamlfile import Strict, load_definitions

EvalType = Literal["classify", "cot_classify", "classify_cot", "cot_classify_jp", "classify_plain"]

INSTRUCTIONS = {
    "classify": "Reply with exactly one of {choices} and nothing else.",
    "classify_cot": "On the first line write exactly one of {choices}. Then, from the next line on, explain "
                    "your reasoning.",
    "cot_classify": "First reason step by step about the question; do not state a conclusion before you have "
                    "reasoned. Then write exactly one of {choices} on its own line, and finally repeat just "
                    "that choice alone on the last line.\nReasoning:",
    # cot_classify with the instruction in Japanese, for Japanese rubrics (OpenAI Evals has it too)
    "cot_classify_jp": "まず、結論を先に述べずに、段階を追って推論を書いてください。次に、{choices} のうち一つだけを"
                       "単独の行に書き、最後の行にその選択肢だけをもう一度書いてください。\n推論：",
    "classify_plain": "",        # the prompt says how to answer; it is sent as written
}


class GraderSpec(Strict):
    name: str = ""
    description: str = ""
    prompt: str | list[dict]
    choice_strings: str | list[str]
    choice_scores: dict[str, float] | Literal["from_strings"] | None = None
    eval_type: EvalType | None = None
    input_outputs: dict[str, str] = Field(default_factory=lambda: {"input": "completion"})
    output_template: str | None = None         # OpenAI Evals' multi-completion layout (not used)
    format_type: str | None = None             # OpenAI Evals' prompt format hint (not used)
    max_tokens: int = Field(1024, ge=1)
    source_file: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> "GraderSpec":
        choices = self.choices
        if not choices or len(set(choices)) != len(choices):
            raise ValueError("choice_strings must name distinct choices")
        if isinstance(self.choice_scores, dict):
            missing = [c for c in choices if c not in self.choice_scores]
            if missing:
                raise ValueError(f"choice_scores has no score for {', '.join(missing)}")
        if self.choice_scores == "from_strings":
            try:
                [float(c) for c in choices]
            except ValueError:
                raise ValueError("choice_scores: from_strings needs numeric choices") from None
        for c in choices:
            if any(ch in string.punctuation for ch in c):
                raise ValueError(f"choice {c!r} contains punctuation, which is stripped before matching")
        return self

    @property
    def choices(self) -> list[str]:
        if isinstance(self.choice_strings, str):
            if self.choice_strings in ("from_n", "from_n_abc", "from_n_ABC"):
                return []
            return list(self.choice_strings)
        return [str(c) for c in self.choice_strings]

    def score_of(self, choice: str) -> float | None:
        if self.choice_scores is None:
            return None
        if self.choice_scores == "from_strings":
            return float(choice)
        return float(self.choice_scores[choice])

    def messages(self, fields: dict[str, str], eval_type: str | None = None) -> list[dict]:
        """The grader's prompt with `fields` filled in, and the answer-format instruction appended."""
        kind = eval_type or self.eval_type or "classify"
        prompt = [{"role": "user", "content": self.prompt}] if isinstance(self.prompt, str) else [dict(m) for m in self.prompt]
        for m in prompt:
            m["content"] = fill(m["content"], fields, self.name)
        instruction = INSTRUCTIONS[kind].format(choices=" or ".join(f'"{c}"' for c in self.choices))
        if instruction:
            prompt[-1]["content"] = prompt[-1]["content"].rstrip() + "\n\n" + instruction
        return prompt


def fill(template: str, fields: dict[str, str], grader: str) -> str:
    """Fill only the placeholders the template uses; any other braces stay as written."""
    used = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    missing = [f for f in used if f not in fields]
    if missing:
        raise EvalkitError(f"grader {grader}: the prompt uses {{{missing[0]}}}, which this eval does not provide "
                           f"(available: {', '.join(sorted(fields))})")
    return template.format(**{f: fields[f] for f in used})


def parse_choice(text: str, eval_type: str, choices: list[str]) -> str | None:
    """The choice a grader reply names, or None (invalid). See the module docstring."""
    lines = text.strip().split("\n")
    if eval_type.startswith("cot_classify"):
        lines = lines[::-1]
    strip = str.maketrans("", "", string.punctuation)
    for line in lines:
        line = line.strip().translate(strip).strip()
        if not line:
            continue
        for c in choices:
            if line.startswith(c) or line.endswith(c):
                return c
    return None


class GraderRegistry:
    def __init__(self) -> None:
        self.graders: dict[str, GraderSpec] = {}
        self.problems: list[str] = []
        self.origins: dict[str, Origin] = {}    # for the precedence rule of plug-in folders

    @classmethod
    def default(cls, extra: list[Path] | None = None) -> "GraderRegistry":
        """evalkit's graders, $EVALKIT_REGISTRY/graders, then `extra` folders; an OpenAI Evals
        `modelgraded` folder is read as OpenAI Evals reads it (a repeated key: the last wins)."""
        reg = cls()
        extra_files = [Folder(folder) for folder in extra or [] if folder.is_dir()]
        for src, f in sourced_files("graders") + [(s, f) for s in extra_files for f in sorted(s.root.glob("*.y*ml"))]:
            reg.add_file(f, lenient=f.parent.name == "modelgraded", source=src)
        return reg

    def add_file(self, path: Path, lenient: bool = False, source: Folder | None = None) -> None:
        found, problems = load_definitions(path, GraderSpec, "grader", lenient=lenient)
        self.graders.update(admit_definitions("grader", source or Folder(path.parent), found, self.origins))
        self.problems += problems

    def get(self, name: str) -> GraderSpec:
        if name not in self.graders:
            bad = [p for p in self.problems if f": {name}" in p]
            if bad:
                raise EvalkitError(bad[0])
            import difflib

            close = difflib.get_close_matches(name, list(self.graders), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise EvalkitError(f"unknown grader {name!r}; {hint}graders: {', '.join(sorted(self.graders)) or 'none'}")
        return self.graders[name]


def grader_for(spec) -> GraderSpec:
    """The grader a model-graded eval names: from the registries, and from the registry its spec
    file sits in (`<root>/graders`, or an OpenAI Evals registry's `<root>/modelgraded`)."""
    extra = []
    if spec.source_file:
        for root in Path(spec.source_file).resolve().parents:
            if (root / "graders").is_dir() or (root / "modelgraded").is_dir():
                extra = [root / "graders", root / "modelgraded"]
                break
    grader = GraderRegistry.default(extra=extra).get(spec.scoring.grader)
    if list(grader.input_outputs.items()) != [("input", "completion")]:
        raise EvalkitError(f"{spec.name}: grader {grader.name} grades {len(grader.input_outputs)} inputs at once "
                           f"({', '.join(grader.input_outputs)}); evalkit grades one reply per sample (pairwise: --versus)")
    return grader

