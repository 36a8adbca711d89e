"""`evalkit validate`: every file's own definitions, checked as `run` would check them.

Each file is read on its own terms: a name defined in two of the files (or folders) given is
reported with both places, and each definition is validated itself, so a copy that hides
another cannot hide its problems too. Every problem is reported once.

Beyond the YAML itself, a spec is checked against its data with the code `run` uses before it
sends anything (evalkit.plan.make_plan): the data is found as a run finds it (a path without
`./` is under the data root, as for `run`), every record is mapped through `dataset.fields`,
`group_by` must name a field every sample has, every multiple-choice answer must be a label (or
index) of its options (evalkit.datasets.answers), and the first PREFLIGHT_SAMPLES prompts are rendered
(evalkit.plan.preflight), which catches a placeholder no record has. A model-graded eval's grader must
exist. Data that a run would download first is not downloaded: those specs are named as not
checked against data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.core.errors import EvalkitError, SpecError
from evalkit.exams.tables import ExamRegistry
from evalkit.specs.graders import GraderRegistry
from evalkit.specs.registry import RawSpec, Registry
from evalkit.specs.evals import META_KEYS, EvalSpec


@dataclass
class Checked:
    """What one `validate` looked at: problems, and how many specs and exams, data read or not."""

    problems: list[str] = field(default_factory=list)
    specs: int = 0
    exams: int = 0
    data_read: int = 0
    not_here: list[str] = field(default_factory=list)

    def text(self) -> tuple[str, str]:
        """'3 spec(s), 6 exam(s)', and what was read of the data."""
        out = f"{self.specs} spec(s)" + (f", {self.exams} exam(s)" if self.exams else "")
        data = f"data read for {self.data_read}" + (f"; not checked against data, which is not here (a run "
                                                    f"downloads it first): {', '.join(self.not_here)}"
                                                    if self.not_here else "")
        return out, data


def validate_paths(paths: list[Path]) -> tuple[list[str], str, str]:
    """Every problem in the built-in registry (no paths) or in the given files and folders, what
    was checked ("12 spec(s), 6 exam(s)") and what of the data was read."""
    checked = Checked()
    reg = Registry.default()
    if not paths:
        exams, graders = ExamRegistry.default(), GraderRegistry.default()
        defs = list(reg.raw.items())
        checked.problems += reg.problems
    else:
        reg.problems.clear()       # the built-in registry is only there to resolve `extends`
        exams, graders = ExamRegistry(), GraderRegistry()
        defs = _read_paths(reg, exams, graders, paths, checked)
    for name, raw in defs:
        checked.problems += check_definition(reg, name, raw, checked)
    checked.problems += exams.problems + exams.check_evals(reg) + graders.problems
    checked.specs, checked.exams = len(defs), len(exams.exams)
    return _once(checked.problems), *checked.text()


def _read_paths(reg: Registry, exams: ExamRegistry, graders: GraderRegistry, paths: list[Path],
                checked: Checked) -> list[tuple[str, RawSpec]]:
    """Every definition of the files given, in order; a name defined twice is a problem naming both."""
    from evalkit.cli.catalog import yaml_files

    defs: list[tuple[str, RawSpec]] = []
    first: dict[str, RawSpec] = {}
    seen: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise EvalkitError(f"{path}: no such file or folder")
        for f in yaml_files(path):
            if f.resolve() in seen:
                continue
            seen.add(f.resolve())
            if f.parent.name == "exams":
                exams.add_file(f)
            elif f.parent.name == "graders":
                graders.add_file(f)
            else:
                for name in reg.add_file(f, override=True):
                    raw = reg.raw[name]
                    if name in first:
                        checked.problems.append(f"{raw.where}: {name}: already defined at {first[name].where} "
                                                "(the later definition hides the earlier; rename one)")
                    first.setdefault(name, raw)
                    defs.append((name, raw))
    checked.problems[:0] = reg.problems
    return defs


def check_definition(reg: Registry, name: str, raw: RawSpec, checked: Checked) -> list[str]:
    """The problems of one definition: its YAML, then its grader and its data as `run` checks them."""
    reg.raw[name] = raw                  # this definition, even where another of the name hides it
    reg.twice.pop(name, None)            # (reported where the files are read)
    if raw.data.get("abstract"):
        unknown = set(raw.data) - set(EvalSpec.model_fields) - META_KEYS - {"description"}
        return [f"{raw.doc.path}:{raw.doc.line((name, k))}: {name}.{k}: unknown key" for k in sorted(unknown)]
    try:
        spec = reg.resolve(name)
    except SpecError as exc:
        return exc.problems
    except EvalkitError as exc:
        return [exc.message]
    problems = Registry._data_problems(spec, raw) + _grader_problems(spec, raw)
    return problems or _data_read(spec, raw, checked)


def _grader_problems(spec: EvalSpec, raw: RawSpec) -> list[str]:
    if spec.scoring.method != "graded":
        return []
    from evalkit.specs.graders import grader_for

    try:
        grader_for(spec)
    except EvalkitError as exc:
        line = raw.doc.line((raw.name, "scoring", "grader"))
        return [f"{raw.doc.path}:{line}: {raw.name}.scoring.grader: {exc.message}"]
    return []


def _data_read(spec: EvalSpec, raw: RawSpec, checked: Checked) -> list[str]:
    """The data read as a run reads it before sending (evalkit.plan.make_plan): one problem or none."""
    from evalkit.datasets.load import dataset_dir
    from evalkit.plan.run_plan import RunOptions, make_plan

    try:
        if dataset_dir(spec, download=False) is None:
            checked.not_here.append(spec.name)
            return []
        make_plan(spec, RunOptions(model="validate"), "validate")
    except EvalkitError as exc:
        said = exc.message if exc.message.startswith(spec.name) else f"{spec.name}: {exc.message}"
        return [f"{raw.doc.path}:{raw.doc.line((raw.name, *_field_of(exc.message)))}: {said}"]
    checked.data_read += 1
    return []


# The spec field a data problem is about, as its message names it (the line is that field's, or
# the spec's own when the field comes from the spec it extends or from a default).
FIELD_NAMED = ((re.compile(r"\(dataset\.fields\.(\w+)\)"), lambda m: ("dataset", "fields", m[1])),
               (re.compile(r": prompt\.(\w+) "), lambda m: ("prompt", m[1])),
               (re.compile(r": group_by: "), lambda m: ("group_by",)),
               (re.compile(r"answer_is|field '[^']*': answer "), lambda m: ("dataset",)),
               (re.compile(r"dataset\.fields\.choices"), lambda m: ("dataset",)),
               (re.compile(r"data not found at|no source is catalogued"), lambda m: ("dataset", "path")))


def _field_of(message: str) -> tuple:
    for pattern, loc in FIELD_NAMED:
        m = pattern.search(message)
        if m:
            return loc(m)
    return ()


def _once(problems: list[str]) -> list[str]:
    return list(dict.fromkeys(problems))
