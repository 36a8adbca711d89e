"""Pairwise preference: `evalkit run EVAL --model A --versus B`.

Both models answer every sample of the eval (two ordinary runs, each with its own log, cache and
resume), then a grader model sees each request with the two replies and picks the better one
(evalkit/registry/graders/pairwise.yaml: "1", "2" or "tie").

**Order.** Which model's reply is shown first is decided per sample by a seeded shuffle of a
balanced list (half A-first, half B-first), so a grader that always prefers one position gives
each model exactly as many wins from it and its bias cancels (to 0.5 for an even sample count).
The log records the order, and the summary reports how often the grader picked the first-shown
reply, so position bias is visible rather than hidden.

**Score.** Per sample, A scores 1 for a win, 0.5 for a tie, 0 for a loss; the win rate of A is the
mean with a bootstrap 95% interval. A grader reply naming no valid choice is invalid: logged and
counted, left out of the rate. Samples either model failed on (errors) are left out and counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from dataclasses import replace
from pathlib import Path

from .backends import FatalError, Request, Sampling
from .cache import Cache
from .places import cache_dir, default_log_dir
from .errors import EvalkitError, warn
from .evaluate import RunOptions, connect, effective_spec, fewshot_pool, run_eval, select_samples
from .graders import GraderRegistry, GraderSpec, parse_choice
from .logs import RunLog, log_path, read_log
from .metrics import summarize
from .prompts import build_messages
from .runner import Outcome, RunnerOptions, run_requests
from .scoring.graded import prompt_text
from .spec import EvalSpec


def balanced_order(ids: list[str], seed: int) -> dict[str, bool]:
    """id -> True when A's reply is shown first; exactly half (rounded down) of the ids are."""
    flags = [i < len(ids) // 2 for i in range(len(ids))]
    random.Random(f"pairwise:{seed}").shuffle(flags)
    return dict(zip(ids, flags))


def run_pairwise(spec: EvalSpec, opts: RunOptions, versus: str, grader_name: str = "pairwise") -> dict:
    if versus == opts.model:
        raise EvalkitError(f"--versus {versus}: compare two different models")
    grader = GraderRegistry.default().get(grader_name)
    if set(grader.choices) != {"1", "2", "tie"} and set(grader.choices) != {"1", "2"}:
        raise EvalkitError(f"grader {grader.name}: a pairwise grader answers 1, 2 (and optionally tie)")
    run_a = run_eval(spec, opts)
    run_b = run_eval(spec, replace(opts, model=versus))
    for r in (run_a, run_b):
        if r["status"] == "interrupted":
            raise KeyboardInterrupt
    _, sa, _ = read_log(run_a["log"])
    _, sb, _ = read_log(run_b["log"])
    eff = effective_spec(spec, opts)
    samples = {s.id: s for s in select_samples(eff, opts)}
    pool = fewshot_pool(eff)
    both = [i for i in sa if i in sb and not sa[i].get("error") and not sb[i].get("error") and i in samples]
    skipped = sorted((set(sa) | set(sb)) - set(both))
    order = balanced_order(both, opts.seed)

    model = opts.grader_model or opts.model
    if opts.grader_model is None:
        warn(f"no --grader-model given, so {model} (one of the two compared models) judges the pair")
    sampling = Sampling(temperature=0.0, max_tokens=grader.max_tokens)
    identity = {"eval": spec.name, "a": opts.model, "b": versus, "grader": model, "grader_spec": grader.model_dump(exclude={"source_file"}),
                "seed": opts.seed, "limit": opts.limit, "a_log": run_a["log"], "b_log": run_b["log"]}
    run_key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    header = {"type": "header", "kind": "pairwise", "run_key": run_key, "eval": spec.name, "model": opts.model,
              "versus": versus, "grader": {"model": model, "spec": grader.name}, "seed": opts.seed,
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    path = log_path(Path(opts.log_dir or default_log_dir()) / "pairwise", spec.name,
                    f"{opts.model}__vs__{versus}", run_key)
    log = RunLog(path, header, fresh=opts.fresh)
    results: dict[str, dict] = {i: rec for i, rec in log.state.done.items() if i in order}
    todo = [i for i in both if i not in results]

    def requests():
        for i in todo:
            smp = samples[i]
            messages = build_messages(eff, smp, pool.choose(eff, smp, opts.seed) if pool else [])
            first, second = (sa[i], sb[i]) if order[i] else (sb[i], sa[i])
            fields = {"input": prompt_text(messages), "completion1": first.get("completion") or "",
                      "completion2": second.get("completion") or "", "ideal": smp.answer or ""}
            yield Request(key=i, messages=grader.messages(fields), sampling=sampling)

    def sink(req: Request, out: Outcome) -> None:
        a_first = order[req.key]
        rec = {"type": "sample", "id": req.key, "first": "A" if a_first else "B", "attempts": out.attempts,
               "cached": out.cached}
        if out.error:
            rec.update({"error": out.error, "score": None})
        else:
            choice = parse_choice(out.completion.text, grader.eval_type or "classify", grader.choices)
            winner = None if choice is None else ("tie" if choice == "tie" else
                                                  ("A" if (choice == "1") == a_first else "B"))
            score = None if winner is None else {"A": 1.0, "B": 0.0, "tie": 0.5}[winner]
            rec.update({"choice": choice, "winner": winner, "score": score, "parsed": choice is not None,
                        "extras": {"first_chosen": float(choice == "1")} if choice in ("1", "2") else None,
                        "grader": {"messages": req.messages, "reply": out.completion.text}})
            results[req.key] = rec
        log.write_sample(rec)

    status, stats = "complete", None
    cache = None if opts.no_cache or not todo else Cache(cache_dir() / "completions.sqlite")
    try:
        if todo:
            backend = connect(model, opts.grader_base_url or opts.base_url, opts.timeout, opts.concurrency,
                              flag="--grader-model: ")
            ropts = RunnerOptions(concurrency=opts.concurrency, max_retries=opts.max_retries, quiet=opts.quiet)
            stats = asyncio.run(_run(backend, requests(), len(todo), sink, ropts, f"{spec.name} pairwise", cache))
    except FatalError as exc:
        raise EvalkitError(f"{spec.name} pairwise: {exc.reason} (finished judgements kept in {log.path})") from None
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        if cache is not None:
            cache.close()
        summary = _summary(spec, opts, versus, model, grader, both, order, results, skipped, run_a, run_b, stats, status,
                           log.path)
        if todo or not log.state.complete:
            log.write_summary(summary)
        log.close()
    return summary


async def _run(backend, requests, total, sink, opts, label, cache):
    try:
        return await run_requests(backend, requests, total, sink, opts, label, cache=cache)
    finally:
        await backend.aclose()


def _summary(spec, opts, versus, model, grader: GraderSpec, ids, order, results, skipped, run_a, run_b, stats,
             status, path):
    judged = [results[i] for i in ids if i in results]
    valid = [r for r in judged if r.get("score") is not None]
    metrics = summarize([(None, r["score"]) for r in valid], seed=opts.seed, name="win_rate")
    firsts = [r["extras"]["first_chosen"] for r in valid if r.get("extras")]
    count = lambda score: sum(1 for r in valid if r["score"] == score)  # noqa: E731
    return {
        "kind": "pairwise", "eval": spec.name, "model": opts.model, "versus": versus,
        "grader": {"model": model, "spec": grader.name},
        "status": status, "incomplete": status != "complete" or len(judged) < len(ids),
        "n": len(ids), "judged": len(judged), "wins": count(1.0), "losses": count(0.0), "ties": count(0.5),
        "invalid": sum(1 for r in judged if r.get("parsed") is False),
        # judgements that failed after retries: `results` holds answered ones only
        "errors": len(ids) - len(judged) if status == "complete" else 0,
        "skipped_samples": len(skipped),
        "win_rate": metrics["win_rate"],
        "first_shown_chosen": round(sum(firsts) / len(firsts), 6) if firsts else None,
        "a_first": sum(1 for i in ids if i in results and order[i]),
        "requests": {"sent": stats.sent if stats else 0, "cached": stats.cached if stats else 0,
                     "retries": stats.retries if stats else 0},
        "logs": {"a": run_a["log"], "b": run_b["log"], "pairwise": str(path)},
        "log": str(path),
    }


def format_pairwise(s: dict) -> str:
    w = s["win_rate"]
    lo, hi = w["ci95"]
    rate = "n/a" if w["value"] is None else f"{w['value']:.4f} (95% CI {lo:.4f}-{hi:.4f})"
    lines = [f"{s['eval']}  {s['model']} vs {s['versus']}  graded by {s['grader']['model']} ({s['grader']['spec']})"
             + ("  [INCOMPLETE]" if s["incomplete"] else ""),
             f"  win rate of {s['model']}: {rate}; ties count half",
             f"  wins {s['wins']}, losses {s['losses']}, ties {s['ties']}, invalid grader replies {s['invalid']}, "
             f"errors {s['errors']} of {s['n']} samples (left out: {s['skipped_samples']} that a model failed on)"]
    if s["first_shown_chosen"] is not None:
        lines.append(f"  the grader chose the first-shown reply {s['first_shown_chosen']:.1%} of the time; "
                     f"{s['model']} was shown first in {s['a_first']} of {s['judged']}")
    lines.append(f"  logs: {s['logs']['a']}  {s['logs']['b']}  {s['logs']['pairwise']}")
    return "\n".join(lines)
