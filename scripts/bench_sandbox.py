#!/usr/bin/env python3
"""What HumanEval's sandbox costs per program, measured side by side with a bare interpreter.

    EVALKIT_DATA_DIR=../shared/data python scripts/bench_sandbox.py [--n 40] [--skip-humaneval]

1. Start-up overhead: N times, alternately, a bare `python -I -S -c pass` (the same base
   interpreter the sandbox uses) and `run_python("pass")` (bubblewrap, the driver, its limits and
   verdict); medians and the difference. Goal: at most 60 ms per program over bare python.
2. The same with two programs at a time (one per core, as evaluate.py schedules code).
3. The 164 HumanEval canonical solutions through the real scorer (prompt + body, test, check),
   one per core, against the same programs run by a bare interpreter one per core; and the
   sandboxed run one at a time.
4. The cost of the out-of-process test: the same 164, one per core, with the test in the
   program's process (as before issue 22) and in the checker's (the scorer's way), interleaved
   in rounds; the ratio per problem. Goal: at most 1.5x.
5. redact() over a megabyte of text.

Figures vary with the machine's load: both sides of each comparison run interleaved in the same
process, so they share it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalkit.core.sample import Sample  # noqa: E402
from evalkit.core.redact import redact  # noqa: E402
from evalkit.scoring.sandbox import _interpreter, require_isolation, run_python  # noqa: E402
from evalkit.scoring.code import build_program, score_code  # noqa: E402

GOAL_MS = 60.0
GOAL_RATIO = 1.5


def bare(program: str = "pass") -> bool:
    return subprocess.run([_interpreter(), "-I", "-S", "-c", program], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def sandboxed(program: str = "pass") -> bool:
    return run_python(program).passed


def timed(fn, *args) -> float:
    start = time.perf_counter()
    assert fn(*args)
    return time.perf_counter() - start


def startup(n: int, workers: int) -> tuple[float, float]:
    """Median seconds per program, (bare, sandboxed), `workers` programs at a time, interleaved."""
    per = {bare: [], sandboxed: []}
    with ThreadPoolExecutor(workers) as pool:
        for _ in range(n):
            for fn in (bare, sandboxed):
                start = time.perf_counter()
                list(pool.map(lambda _, fn=fn: fn(), range(workers)))
                per[fn].append((time.perf_counter() - start) / workers)
    return statistics.median(per[bare]), statistics.median(per[sandboxed])


def humaneval(data_dir: Path, workers: int) -> dict[str, float]:
    with gzip.open(data_dir / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    samples = [(Sample(id=r["task_id"], question=r["prompt"], answer="", fields={k: r[k] for k in ("prompt", "entry_point", "test")}),
                r["canonical_solution"]) for r in rows]
    scripts = ["\n".join(build_program(s, body)) for s, body in samples]
    out = {}
    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        assert all(pool.map(bare, scripts))
        out[f"bare python, {workers} at a time"] = time.perf_counter() - start
        start = time.perf_counter()
        scores = list(pool.map(lambda sb: score_code(sb[1], sb[0]).value, samples))
        out[f"sandboxed, {workers} at a time"] = time.perf_counter() - start
    assert scores == [1.0] * len(samples), "a canonical solution failed"
    start = time.perf_counter()
    assert all(score_code(body, s).value == 1.0 for s, body in samples)
    out["sandboxed, one at a time"] = time.perf_counter() - start
    return out


def out_of_process(data_dir: Path, workers: int, rounds: int = 3) -> tuple[float, float]:
    """Seconds per HumanEval problem (median of `rounds`), (test in-process, test in the checker)."""
    with gzip.open(data_dir / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    jobs = [(r["prompt"] + r["canonical_solution"], f"{r['test']}\n\ncheck({r['entry_point']})\n",
             r["prompt"] + "    pass\n", r["entry_point"]) for r in rows]
    inproc = lambda j: run_python(j[0], j[1])                                     # noqa: E731
    checker = lambda j: run_python(j[0], j[1], prelude=j[2], entry=j[3])          # noqa: E731
    per = {inproc: [], checker: []}
    with ThreadPoolExecutor(workers) as pool:
        for _ in range(rounds):
            for fn in (inproc, checker):
                start = time.perf_counter()
                results = list(pool.map(fn, jobs))
                per[fn].append((time.perf_counter() - start) / len(jobs))
                assert all(r.passed for r in results), "a canonical solution failed"
    return statistics.median(per[inproc]), statistics.median(per[checker])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=40, help="start-up measurements per side")
    ap.add_argument("--skip-humaneval", action="store_true")
    args = ap.parse_args()
    workers = os.cpu_count() or 2
    start = time.perf_counter()
    print(f"isolation: {require_isolation()} (set up once in {(time.perf_counter() - start) * 1000:.0f} ms, "
          f"including a probe run)")
    print(f"interpreter: {_interpreter()}; cores: {workers}; load average: {os.getloadavg()[0]:.2f}\n")
    print(f"{'start-up, per program (median)':40} {'bare':>9} {'sandbox':>9} {'overhead':>9}  goal")
    for w in (1, workers):
        b, s = startup(args.n, w)
        over = (s - b) * 1000
        print(f"{f'{w} at a time':40} {b * 1000:7.1f}ms {s * 1000:7.1f}ms {over:7.1f}ms  <= {GOAL_MS:.0f} ms "
              f"{'ok' if over <= GOAL_MS else 'MISSED'}")
    if not args.skip_humaneval:
        data = Path(os.environ.get("EVALKIT_DATA_DIR") or Path(__file__).resolve().parent.parent.parent / "shared" / "data")
        print(f"\n{'164 HumanEval canonical solutions':40} {'wall':>9} {'per program':>12}")
        for name, secs in humaneval(data, workers).items():
            print(f"{name:40} {secs:8.2f}s {secs / 164 * 1000:10.1f}ms")
        inproc, checker = out_of_process(data, workers)
        ratio = checker / inproc
        print(f"\n{'the test, per HumanEval problem (median)':40} {'in-process':>10} {'checker':>9} {'ratio':>7}  goal")
        print(f"{f'{workers} at a time, 3 rounds':40} {inproc * 1000:8.1f}ms {checker * 1000:7.1f}ms {ratio:6.2f}x  "
              f"<= {GOAL_RATIO}x {'ok' if ratio <= GOAL_RATIO else 'MISSED'}")
    text = ("The quick brown fox jumps over the lazy dog; ask-me sk-x hf_y Bearer z. " * 14000)[:1_000_000]
    start = time.perf_counter()
    redact(text, ["not-in-the-text-1234"])
    print(f"\nredact(), 1 MB of text with near misses: {(time.perf_counter() - start) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
