"""`evalkit run --dry-run`: what a run would send and cost, without sending anything."""

from __future__ import annotations

from evalkit.backends import Backend
from evalkit.backends.costs import Pricer, TokenCounter
from evalkit.core.errors import EvalkitError
from evalkit.plan.run_plan import RunOptions, RunPlan, make_plan, worst_case_tokens
from evalkit.backends.presets import endpoint_of, pricer_for
from evalkit.specs.evals import EvalSpec
from evalkit.runs.checks import wire_for


def cost_estimate(plan: RunPlan, pricer: Pricer, backend: Backend):
    if not pricer.known:
        raise EvalkitError(f"--max-cost: no price is known for {plan.opts.model} (the registry records none for it; "
                           "see `evalkit providers`)")
    counter = TokenCounter(plan.opts.model)
    worst = worst_case_tokens(plan.spec) + backend.reasoning_budget(plan.sampling)
    return lambda req: pricer.cost(counter.count_messages(req.messages), worst)


def dry_run(spec: EvalSpec, opts: RunOptions) -> dict:
    """What a run would send, before sending anything: samples, prompt tokens, worst-case cost."""
    plan = make_plan(spec, opts, "dry-run")
    counter = TokenCounter(opts.model)
    prompt_tokens = sum(counter.count_messages(plan.request(s, j, uid).messages) for s, j, uid in plan.units())
    units = len(plan.samples) * plan.per_item
    max_out = plan.spec.generation.max_tokens
    budget = wire_for(opts.model).budget(plan.sampling) if max_out else 0
    pricer = pricer_for(opts.model, "batch" if opts.batch else "standard")   # the provider's own table
    most = units * (max_out + budget) if max_out else None
    return {
        "eval": plan.spec.name, "model": opts.model, "endpoint": endpoint_of(opts.model, opts.base_url),
        "samples": units, "prompt_tokens": prompt_tokens,
        "tokenizer": counter.name, "max_completion_tokens": most, "max_answer_tokens": units * max_out if max_out else None,
        "reasoning_budget_per_sample": budget,
        "unknown": ["how many tokens the model spends reasoning (between none and the budget)"] * bool(budget)
                   + ["which prompt tokens the provider's cache serves (all priced as uncached)"],
        "estimated_cost_usd": {"prompt": pricer.cost(prompt_tokens, 0),
                               "no_reasoning": pricer.cost(prompt_tokens, units * max_out) if max_out else None,
                               "worst_case": pricer.cost(prompt_tokens, most) if most is not None else None},
        "prices": ({"input_per_million": pricer.input_per_m, "output_per_million": pricer.output_per_m,
                    "tier": pricer.tier, "source": pricer.source, "recorded": pricer.recorded} if pricer.known else None),
    }
