"""What must hold before a run sends anything: the same reasoning budget and scale as the log it
resumes, no live batch of another command, and a backend able to do what the spec asks."""

from __future__ import annotations

import os
from evalkit.backends import Backend
from evalkit.core.errors import EvalkitError, warn
from evalkit.results.runlog import LoggedRun
from evalkit.plan.run_plan import RunPlan


def same_budget(run: LoggedRun, budget: int) -> None:
    """A resumed log's answers hold for this run's reasoning budget: a smaller one than they were
    made with is another run (an answer may have needed more); a larger one keeps them, and the
    truncated ones are sent again with --retry-truncated."""
    before = (run.previous_header or {}).get("reasoning_budget", 0)
    if not run.done or before == budget:
        return
    if budget < before:
        raise EvalkitError(f"{run.path}: its {len(run.done)} samples were answered with a reasoning budget of "
                           f"{before:,} tokens and this command allows {budget:,}; a smaller budget is another run: "
                           "pass --fresh, or another --log-dir")
    truncated = sum(1 for r in run.done.values() if r.truncated)
    warn(f"{run.path}: resuming {len(run.done)} samples answered with a reasoning budget of {before:,} tokens "
         f"(now {budget:,}); {truncated} truncated ones are sent again only with --retry-truncated")


def same_scale(run: LoggedRun, scale: float | None) -> None:
    """The header is written once: a resumed log keeps the scale it recorded, so another is refused."""
    before = (run.previous_header or {}).get("scale")
    if run.previous_header is not None and scale is not None and before != scale:
        raise EvalkitError(f"{run.path}: this log recorded --scale {before}; a resumed run cannot change it "
                           f"to {scale:g}: pass --fresh, or give `evalkit predict --x` the value instead")


def cancel_command(path, base_url: str | None) -> str:
    """The `evalkit batches` command that cancels a log's batches (at the run's own endpoint)."""
    return f"evalkit batches {path}{f' --base-url {base_url}' if base_url else ''} --cancel"


def keep_live_batches(path, base_url: str | None) -> None:
    """--fresh would forget batches whose results the log has not recorded yet (running, or done
    and paid for), and send their requests again: refuse, saying how to get out."""
    from evalkit.send.batch_journal import unrecorded
    from evalkit.results.runlog import read_log

    try:
        live = unrecorded(read_log(path).batches) if os.path.exists(path) else 0
    except EvalkitError:
        return                              # not a readable log: --fresh overwrites it
    if live:
        raise EvalkitError(f"--fresh: {path} names {live} batch(es) whose results are not recorded yet (running, "
                           "or finished and paid for): rerun without --fresh to collect them, or cancel them "
                           f"(`{cancel_command(path, base_url)}`) and move the log away")


def no_live_batches(run: LoggedRun, todo: list[str], base_url: str | None) -> None:
    """A run without --batch would send again what the log's unrecorded batches hold: refuse."""
    from evalkit.send.batch_journal import unrecorded

    live = unrecorded(run.batches, todo)
    if live:
        raise EvalkitError(f"{run.path} names {live} batch(es) whose results are not recorded yet: rerun with "
                           f"--batch to collect them (`{cancel_command(run.path, base_url)}` first if you will not "
                           "wait), instead of paying for their requests again")


def wire_for(model: str):
    """How requests to "provider/name" are spelled, without connecting (dry runs need no key);
    the plain wire for anything that is not a preset."""
    from evalkit.backends.openai_wire import Wire
    from evalkit.backends.presets import registry_providers

    provider, _, name = model.partition("/")
    preset = registry_providers().get(provider)
    return Wire.for_preset(preset, name) if preset is not None else Wire()


def check_capabilities(plan: RunPlan, backend: Backend) -> None:
    """Refuse, before the first request, a run the endpoint cannot serve."""
    caps, name = backend.capabilities, plan.opts.model
    if plan.options is not None and not caps.option_probs:
        raise EvalkitError(f"{plan.spec.name}: {name} cannot answer by option probability (--answer-by logprob): "
                           "it returns no log-probabilities")
    if plan.sampling.top_logprobs and not caps.logprobs:
        raise EvalkitError(f"{plan.spec.name}: {name} returns no log-probabilities, which this run asks for "
                           "(--logprobs, or a scorer that needs them)")
    check_reasoning(plan, caps, name, backend.not_sent(plan.sampling))
    if plan.spec.prompt.system and not caps.system_messages:
        raise EvalkitError(f"{plan.spec.name}: {name} takes no system message, and the eval has one (prompt.system)")
    if plan.spec.prompt.vision and "images" in plan.spec.dataset.fields and not caps.images:
        raise EvalkitError(f"{plan.spec.name}: {name} reads no images; pass --no-vision to send IMAGE: tags instead")


def check_reasoning(plan: RunPlan, caps, name: str, not_sent: frozenset) -> None:
    """--reasoning-effort where the model has that control; no explicit flag the model refuses."""
    effort = plan.sampling.reasoning_effort
    if effort is not None and effort not in caps.effort_levels:
        takes = f"it takes {', '.join(caps.effort_levels)}" if caps.effort_levels else \
            "its provider documents no such control for it (see `evalkit providers --json`; --extra-body sends any field)"
        raise EvalkitError(f"{plan.spec.name}: --reasoning-effort {effort}: {name} has no such level: {takes}")
    if plan.opts.temperature is not None and "temperature" in not_sent:
        why = "refuses any temperature but its default" if "temperature" in caps.refused else \
            "takes no temperature while it thinks (--reasoning-effort none turns thinking off)"
        raise EvalkitError(f"{plan.spec.name}: --temperature: {name} {why}, so evalkit does not send one; "
                           "leave the flag out")
