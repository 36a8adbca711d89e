"""What a run checks before it sends anything, and what `validate` checks the same way.

Loading the data (evalkit.datasets) already checks every record against `dataset.fields`, the
`group_by` field (evalkit.plan.regroup) and every multiple-choice answer (evalkit.datasets.answers). What is
left is the prompt: `prompt.template`, `preamble` and `target_format` name placeholders that a
record may lack (`{questoin}`), so the first PREFLIGHT_SAMPLES samples the run would send (its own
order) are rendered, few-shot examples included, before any request goes out. A sample beyond them
that lacks a field still fails with the same message when its turn comes.
"""

from __future__ import annotations

PREFLIGHT_SAMPLES = 1000


def check_prompts(plan, count: int = PREFLIGHT_SAMPLES) -> int:
    """Render the requests of the plan's first `count` samples (EvalkitError on the first that
    cannot be built); returns how many were rendered."""
    from evalkit.plan.shards import unit_id

    checked = plan.samples[:count]
    for s in checked:
        plan.request(s, 0, unit_id(s.id, 0, plan.per_item))
    return len(checked)
