"""Differential test of evalkit's `math` scorer against the MATH authors' graders.

    PYTHONPATH=. python scripts/bench_math_equiv.py [--data DIR] [--limit N] [--examples K]

Replies are generated from MATH-500's 500 reference answers in every LaTeX variant class of
scripts/math_reference/replies.py; each is graded by
  evalkit      final_answer() + equivalent()   (evalkit.scoring.mathanswer)
  hendrycks    last_boxed_only_string + remove_boxed + is_equiv (the MATH paper's grader)
  hendrycks-eq is_equiv on the answer evalkit extracts (the equivalence alone)
  prm800k      grade_answer on the answer evalkit extracts (PRM800K's grader has no box reader)
and the script prints, per class, how often each says "right", the agreement between them, how
often each differs from the reply's label ("wrong"), and up to K example disagreements per pair. docs/benchmarks-math.md reports its output.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from math_reference import hendrycks, prm800k          # noqa: E402
from math_reference.replies import replies            # noqa: E402

from evalkit.scoring.mathanswer import equivalent      # noqa: E402
from evalkit.scoring.mathextract import final_answer   # noqa: E402


class _Slow(Exception):
    pass


def _alarm(*_):
    raise _Slow


def prm800k_grade(answer: str | None, reference: str, seconds: int = 5) -> bool | str:
    """PRM800K's verdict, or "timeout" (its sympy call has no time limit of its own)."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        return prm800k.grade_answer(answer, reference)
    except _Slow:
        return "timeout"
    finally:
        signal.alarm(0)


def grade_all(references: list[str]) -> list[dict]:
    rows = []
    for variant, ref, reply, meaning in replies(references):
        got = final_answer(reply)
        rows.append({"variant": variant, "reference": ref, "reply": reply, "meaning": meaning,
                     "evalkit": got is not None and equivalent(ref, got),
                     "hendrycks": hendrycks.grade(reply, ref),
                     "hendrycks-eq": hendrycks.is_equiv(got, ref) if got is not None else False,
                     "prm800k": prm800k_grade(got, ref)})
    return rows


def summary(rows: list[dict]) -> dict:
    per = defaultdict(Counter)
    for r in rows:
        c = per[r["variant"]]
        c["n"] += 1
        for g in ("evalkit", "hendrycks", "hendrycks-eq", "prm800k"):
            c[g] += r[g] is True
            c[f"{g} wrong"] += (r[g] is True) != (r["meaning"] is True)
        c["evalkit=hendrycks"] += r["evalkit"] == r["hendrycks"]
        c["evalkit=hendrycks-eq"] += r["evalkit"] == r["hendrycks-eq"]
        c["evalkit=prm800k"] += r["evalkit"] == r["prm800k"]
        c["timeouts"] += r["prm800k"] == "timeout"
    total = Counter()
    for c in per.values():
        total.update(c)
    return {"per_variant": {k: dict(v) for k, v in per.items()}, "total": dict(total)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("EVALKIT_DATA_DIR", "../shared/data"))
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--examples", type=int, default=3)
    ap.add_argument("--json", help="write every graded reply here")
    args = ap.parse_args()
    lines = (Path(args.data) / "math500" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    refs = [json.loads(line)["answer"] for line in lines[:args.limit]]
    rows = grade_all(refs)
    s = summary(rows)
    cols = ["n", "evalkit", "hendrycks", "hendrycks-eq", "prm800k", "evalkit=hendrycks", "evalkit=hendrycks-eq",
            "evalkit=prm800k", "evalkit wrong", "hendrycks wrong", "prm800k wrong", "timeouts"]
    print("| variant | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for name, c in list(s["per_variant"].items()) + [("**all**", s["total"])]:
        print(f"| {name} | " + " | ".join(str(c.get(k, 0)) for k in cols) + " |")
    for other in ("hendrycks", "hendrycks-eq", "prm800k"):
        diff = [r for r in rows if r["evalkit"] != r[other]]
        print(f"\nevalkit vs {other}: {len(diff)} of {len(rows)} differ")
        shown = Counter()
        for r in diff:
            if shown[r["variant"]] < args.examples:
                shown[r["variant"]] += 1
                print(f"  [{r['variant']}] ref {r['reference']!r}: evalkit {r['evalkit']}, {other} {r[other]}; "
                      f"reply ...{r['reply'][-70:]!r}")
    if args.json:
        Path(args.json).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    main()
