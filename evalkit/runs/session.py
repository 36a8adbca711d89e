"""`evalkit run NAME ...`: what each name is, running each, and whether the whole can be trusted.

A name is a registry eval (`mmlu`, `mmlu.anatomy`), a YAML file, an exam (`lsat`), or with
`--registry` an OpenAI Evals eval or eval set. Each runs in turn (its result printed as it
finishes); then the session decides the exit code:

- 130 when interrupted (finished samples are logged; the same command resumes);
- 1 when a run cannot be trusted: it scored nothing, more samples errored (or got an invalid
  grade) than `--fail-on-error` (default 0: any), most answers could not be read
  (evalkit.results.unread), `--max-cost` stopped it, an exam is incomplete, or an OpenAI Evals set held
  evals evalkit does not run;
- 0 otherwise.

A run that ended with errors names the most common one and its count (read back from its log,
so redacted), in its verdict or, within --fail-on-error, as a warning.

`run_session` yields `Message`s (one line each, with the exit code they imply) for the command
line to print; results go to `echo` as they come.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from evalkit.core.errors import EvalkitError, warn
from evalkit.exams.tables import Exam, ExamRegistry
from evalkit.plan.run_plan import RunOptions
from evalkit.results.outputs import as_json
from evalkit.results.records import Summary
from evalkit.scoring.graded import is_graded
from evalkit.specs.evals import EvalSpec


@dataclass
class RunRequest:
    names: list[str]
    options: dict
    as_json: bool = False
    dry_run: bool = False
    versus: str | None = None
    oai_registry: Path | None = None
    grades: Path | None = None
    fail_on_error: float = 0.0


@dataclass
class Message:
    text: str
    exit_code: int = 0


@dataclass
class _Verdicts:
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def run_session(req: RunRequest, echo: Callable[[str], None]) -> Iterator[Message]:
    opts = RunOptions(**req.options)
    targets, skipped, registry = _targets(req)
    _check_flags(req, opts, targets)
    verdicts = _Verdicts(skipped=skipped)
    for target, outcome in _run_all(targets, req, opts, echo, registry):
        if outcome == "interrupted":
            yield Message("interrupted; finished samples are in the log, run the same command to resume", 130)
            return
        if outcome:
            verdicts.failures.append(outcome)
    for msg in skipped:
        yield Message(f"skipped, {msg}")
    if skipped:
        verdicts.failures.append(f"{len(skipped)} of {len(targets) + len(skipped)} evals not run (not supported)")
    for f in verdicts.failures:
        yield Message(f)
    if verdicts.failures:
        yield Message(f"{len(verdicts.failures)} problem(s): the results above cannot be trusted as a complete run", 1)


def _run_all(targets: list, req: RunRequest, opts: RunOptions, echo, registry):
    """Each target's outcome as it finishes, one backend per model for the whole command."""
    from evalkit.runs.pipeline import one_backend_per_model

    with one_backend_per_model():
        for target in targets:
            yield target, _run_one(target, req, opts, echo, registry)


def _targets(req: RunRequest) -> tuple[list[EvalSpec | Exam], list[str], object]:
    """What each name is, the names skipped as not supported, and the registry exams resolve
    their sections' evals through."""
    if req.oai_registry is not None:
        return (*_oai_targets(req.oai_registry, req.names), None)
    from evalkit.specs.registry import load_registry

    paths = [n for n in req.names if n.endswith((".yaml", ".yml")) or "/" in n]
    for p in paths:
        if not Path(p).is_file():
            raise EvalkitError(f"{p}: no such file")
    reg, from_files = load_registry(paths)
    bad = [p for p in reg.problems if any(p.startswith(str(Path(x))) for x in paths)]
    if bad:
        raise EvalkitError(bad[0] + (f" (and {len(bad) - 1} more; run `evalkit validate {' '.join(paths)}`)" if len(bad) > 1 else ""))
    exams, out = None, []
    for n in req.names:
        if n in paths:
            out += [reg.resolve(m) for m in from_files if reg.raw[m].doc.path == Path(n) and not reg.raw[m].data.get("abstract")]
        elif n in reg.raw or "." in n:
            out.append(reg.resolve(n))
        else:
            exams = exams or ExamRegistry.default()
            out.append(exams.get(n) if n in exams.exams else reg.resolve(n))
    return out, [], reg


def _oai_targets(root: Path, names: list[str]) -> tuple[list[EvalSpec], list[str]]:
    from evalkit.specs.oai_registry import NotSupported, OAIRegistry

    oai = OAIRegistry(root)
    expanded = [e for n in names for e in oai.expand(n)]
    specs, skipped = [], []
    for name in expanded:
        try:
            specs.append(oai.resolve(name))
        except NotSupported as exc:
            if len(expanded) == 1:
                raise
            skipped.append(exc.message)
    return specs, skipped


def _check_flags(req: RunRequest, opts: RunOptions, targets: list) -> None:
    specs = [t for t in targets if isinstance(t, EvalSpec)]
    if opts.log_file is not None and (len(targets) != 1 or not specs or req.versus):
        raise EvalkitError("--log-file names the log of one eval: give exactly one eval (not an exam, a set or --versus)")
    if req.grades is not None and not any(isinstance(t, Exam) for t in targets):
        raise EvalkitError("--grades applies to exams (free-response sections) only")
    if req.versus and any(isinstance(t, Exam) for t in targets):
        raise EvalkitError("--versus compares two models on an eval, not on an exam")
    if req.versus and opts.shard is not None:
        raise EvalkitError("--shard splits the samples of a one-model run; it does not apply to --versus")
    if opts.shard is not None and req.grades is not None:
        raise EvalkitError("--grades scores a whole exam: give it to the run after `evalkit merge`, not to a shard")
    graded = req.versus or any(is_graded(s.scoring) for s in specs) or \
        any(isinstance(t, Exam) for t in targets)
    if (opts.grader_model or opts.grader_base_url) and not graded:
        raise EvalkitError("--grader-model: none of these evals is model-graded (and no --versus); drop the flag")
    _check_batch_flags(req, opts)


def _check_batch_flags(req: RunRequest, opts: RunOptions) -> None:
    batch_only = [f for f, on in (("--batch-size", opts.batch_size is not None),
                                  ("--batch-fallback", opts.batch_fallback)) if on]
    if batch_only and not opts.batch:
        raise EvalkitError(f"{batch_only[0]} applies to --batch runs only; add --batch or drop it")
    if not opts.batch:
        return
    if opts.model.startswith("anthropic/"):
        raise EvalkitError("--batch: Anthropic's Message Batches are not supported (evalkit reaches Anthropic through "
                           "its OpenAI-compatible endpoint, which has no Batch API); run without --batch")
    if req.versus:
        raise EvalkitError("--batch: pairwise runs (--versus) are sent one request at a time; run without --batch")


def _run_one(target, req: RunRequest, opts: RunOptions, echo, registry) -> str | None:
    """Run one eval or exam, print its result, and say what (if anything) makes it untrustworthy."""
    if isinstance(target, Exam):
        return _run_exam(target, req, opts, echo, registry)
    if req.dry_run:
        from evalkit.cli.formats import plan_text
        from evalkit.runs.pipeline import dry_run

        estimate = dry_run(target, opts)
        echo(as_json("dry-run", estimate) if req.as_json else plan_text(estimate))
        return None
    if req.versus:
        from evalkit.cli.formats import pairwise_text
        from evalkit.runs.pairwise import run_pairwise

        s = run_pairwise(target, opts, req.versus)
        echo(s.model_dump_json() if req.as_json else pairwise_text(s))
        return "interrupted" if s.status == "interrupted" else None
    from evalkit.cli.formats import summary_text
    from evalkit.runs.pipeline import run_eval

    s = run_eval(target, opts)
    echo(s.model_dump_json() if req.as_json else summary_text(s))
    unread = _unread(s)
    return verdict(s, req.fail_on_error, opts) or unread


def _unread(s: Summary) -> str | None:
    """The unread-answer warning on stderr (it is also in the summary's notes), and the failure
    when most answers were not read (evalkit.results.unread)."""
    from evalkit.results.unread import unread_failure

    for note in s.notes:
        if " could not be read and count as wrong or unscored " in note:
            warn(f"{s.eval}: {note}")
    return unread_failure(s)


def error_limit(threshold: float, n: int) -> float:
    """How many errors --fail-on-error allows among n samples: a count (0 or >= 1) or a fraction."""
    return threshold if threshold >= 1 or threshold == 0 else threshold * n


def verdict(s: Summary, threshold: float, opts: RunOptions) -> str | None:
    """Why a finished run cannot be trusted, or None. A run with errors names the most common
    (a warning when there are no more than --fail-on-error allows)."""
    if s.status == "interrupted":
        return "interrupted"
    if s.status.startswith("stopped: max_cost"):
        return (f"{s.eval}: stopped before exceeding --max-cost {opts.max_cost} USD ({s.scored}/{s.n} samples "
                "scored; raise the limit and rerun to resume)")
    common = most_common_error(s) if s.errors else ""
    graded = f", {s.invalid_grades} invalid grades" if s.invalid_grades else ""
    if s.n and s.scored == 0:
        return f"{s.eval}: no sample was scored ({s.errors} errors{graded}{common}; see the log: {s.log})"
    if s.errors + s.truncated + s.invalid_grades > error_limit(threshold, s.n):
        if s.invalid_grades and not s.truncated:
            errs = f"{s.errors} samples ended in errors{common} and " if s.errors else ""
            return (f"{s.eval}: of {s.n} samples, {errs}{s.invalid_grades} got a grade naming no valid class (not "
                    f"scored), more than --fail-on-error {threshold:g}; check the grader's replies in the log "
                    "(`grader.reply`), or use another --grader-model")
        if not s.truncated:
            return (f"{s.eval}: {s.errors} of {s.n} samples ended in errors{common}, more than --fail-on-error "
                    f"{threshold:g}; rerun the same command to retry them")
        return (f"{s.eval}: {s.errors} of {s.n} samples ended in errors{common} and {s.truncated} were truncated by "
                f"the token limit (scored 0: no answer), more than --fail-on-error {threshold:g}; raise "
                "--max-reasoning-tokens (or --max-tokens) and rerun with --retry-truncated")
    if s.errors:
        warn(f"{s.eval}: {s.errors} of {s.n} samples ended in errors{common}")
    if s.invalid_grades:
        warn(f"{s.eval}: {s.invalid_grades} of {s.n} samples got a grade naming no valid class (not scored)")
    return None


def most_common_error(s: Summary) -> str:
    """'; most common (N): <error>' from the run's log (redacted when it was written), or ''."""
    from evalkit.results.runlog import read_log

    try:
        counts = Counter(r.error for r in read_log(s.log).samples.values() if r.error)
    except EvalkitError:
        return ""
    if not counts:
        return ""
    error, n = counts.most_common(1)[0]
    line = " ".join(error.split())
    return f"; most common ({n}): {line if len(line) <= 300 else line[:297] + '...'}"


def _run_exam(exam: Exam, req: RunRequest, opts: RunOptions, echo, reg) -> str | None:
    if req.dry_run:
        from evalkit.cli.formats import plan_text
        from evalkit.runs.pipeline import dry_run

        for ev in dict.fromkeys(sec.eval for sec in exam.sections if sec.eval):
            estimate = dry_run(reg.resolve(ev), opts)
            echo(as_json("dry-run", estimate) if req.as_json else plan_text(estimate))
        return None
    from evalkit.runs.exam_run import run_exam, run_exam_shard
    from evalkit.cli.formats import exam_shard_text, exam_text

    if opts.shard is not None:
        result = run_exam_shard(exam, reg, opts)
        echo(as_json("exam-shard", result) if req.as_json else exam_shard_text(result))
        return f"{exam.name}: shard {opts.shard} incomplete; rerun to resume" if result["incomplete"] else None
    result = run_exam(exam, reg, opts, grades=req.grades)
    echo(as_json("exam-result", result) if req.as_json else exam_text(result))
    if result["incomplete"]:
        return f"{exam.name}: incomplete (some items errored or the run stopped); rerun to resume"
    return _exam_unread(result)


def _exam_unread(result: dict) -> str | None:
    """An exam section whose answers mostly could not be read is no score (evalkit.results.unread)."""
    from evalkit.results.unread import FAIL_SHARE, WARN_SHARE

    for sec in result["sections"]:
        if sec["n"] and sec["blank"] > WARN_SHARE * sec["n"]:
            warn(f"{result['exam']}: section {sec['name']}: {sec['blank']} of {sec['n']} answers could not be read "
                 f"(scored as blank); see {sec['log']}")
        if sec["n"] and sec["blank"] > FAIL_SHARE * sec["n"]:
            return (f"{result['exam']}: section {sec['name']}: {sec['blank']} of {sec['n']} answers could not be read "
                    f"(more than {FAIL_SHARE:.0%}: see docs/results.md); the score is the answer format's, "
                    "not the model's")
    return None
