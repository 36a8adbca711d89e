#!/usr/bin/env python3
"""Speed and memory of evalkit's runner against the floor of the plain `openai` client.

    python scripts/bench.py [--n 1000] [--big 100000] [--repeat 3] [--skip-big]

Starts `evalkit.testserver` (in its own process) with a chosen latency and error rate, runs a
generated N-question multiple-choice eval through the real CLI (and, with injected faults, checks
that nothing is lost or scored twice, also across an interrupted and resumed run), and in the same
session measures
the floor: the same prompts sent by a minimal loop (one shared `AsyncOpenAI` client, a semaphore,
a letter check, nothing else), whole process timed from start to exit just as evalkit is. Each
figure is the median of --repeat runs. Printed as a table with each ratio and its target.
"""

from __future__ import annotations

import argparse
import json
import os
import resource  # noqa: F401  (used by the wrapper's text)
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LETTERS = "ABCD"

FLOOR = r'''
import asyncio, json, re, sys
from openai import AsyncOpenAI
data, url, conc = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [json.loads(l) for l in open(data)]
async def main():
    client = AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    sem = asyncio.Semaphore(conc)
    async def one(r):
        text = r["question"] + "\n" + "\n".join(f"{l}. {c}" for l, c in zip("ABCD", r["choices"])) + "\nAnswer:"
        async with sem:
            resp = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": text}],
                                                        temperature=0, max_tokens=8)
        m = re.search(r"[ABCD]", resp.choices[0].message.content or "")
        return m is not None and m.group(0) == r["answer"]
    right = sum(await asyncio.gather(*(one(r) for r in rows)))
    print(right / len(rows))
asyncio.run(main())
'''


RSS_WRAPPER = ("import atexit, resource, runpy, sys; "
               "atexit.register(lambda: sys.stderr.write("
               "'MAXRSS_KB %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)); "
               "sys.argv[0] = 'evalkit'; runpy.run_module('evalkit', run_name='__main__')")


def make_eval(folder: Path, n: int) -> tuple[Path, Path]:
    """An n-question multiple-choice eval, its spec, and the server's answer key."""
    data, key = folder / f"mc{n}.jsonl", folder / f"key{n}.jsonl"
    with open(data, "w") as d, open(key, "w") as k:
        for i in range(n):
            ans = LETTERS[(i * 7) % 4]
            q = f"Question {i}: which option names the colour of item {i}?"
            d.write(json.dumps({"id": str(i), "question": q, "choices": ["red", "green", "blue", "white"],
                                "answer": ans}) + "\n")
            k.write(json.dumps({"match": f"Question {i}:", "reply": ans}) + "\n")
    spec = folder / f"mc{n}.yaml"
    spec.write_text(f"""bench{n}:
  description: generated {n}-question multiple-choice eval for benchmarks
  template: multiple_choice
  dataset:
    format: jsonl
    path: ./mc{n}.jsonl
    split: test
    fields: {{id: id, question: question, choices: choices, answer: answer}}
  prompt:
    template: "{{question}}\\n{{choices}}\\nAnswer:"
  generation: {{temperature: 0, max_tokens: 8}}
  scoring: {{method: letter, labels: ABCD}}
""")
    return spec, key


class Server:
    def __init__(self, key: Path, **flags):
        cmd = [sys.executable, "-m", "evalkit.testserver", "--answers", str(key)]
        for k, v in flags.items():
            for value in v if isinstance(v, list) else [v]:
                cmd += ["--" + k.replace("_", "-"), str(value)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().split()[-1]

    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/stats") as r:
            return json.load(r)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return wall, res


def evalkit_cmd(spec: Path, url: str, logdir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "evalkit", "run", str(spec), "--model", "openai/m", "--base-url", url,
            "--json", "--quiet", "--log-dir", str(logdir), *extra]


def median_run(repeat: int, fn) -> tuple[float, object]:
    results = [fn(i) for i in range(repeat)]
    walls = [w for w, _ in results]
    return statistics.median(walls), results[-1][1]


FAULTS = ["429=0.05", "500=0.05", "html=0.05", "trickle=0.05", "reset=0.05"]


def fault_injection(tmp: Path, env: dict, n: int) -> tuple[str, str, str]:
    """n samples through a server that injects FAULTS: once straight through, once interrupted with
    SIGINT halfway and resumed. Every sample must end scored or recorded as an error, none scored
    twice, and the resumed run's scores must equal the uninterrupted one's."""
    import signal

    spec, key = make_eval(tmp, n)
    flags = {"fault": FAULTS, "trickle_interval": 0.05, "seed": 5}
    extra = ["--no-cache", "--timeout", "5", "--max-retries", "8", "--max-retry-after", "60", "--fail-on-error", "0.5"]
    srv = Server(key, **flags)
    try:
        wall, res = timed(evalkit_cmd(spec, srv.url, tmp / "faults-a", *extra), env)
        whole = json.loads(res.stdout)
        srv2 = Server(key, **flags)
        cmd = evalkit_cmd(spec, srv2.url, tmp / "faults-b", *extra)
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        while srv2.stats().get("completions", 0) < n // 2:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
        resumed = json.loads(subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}).stdout)
        faults = {k: v for k, v in srv.stats().items() if k.startswith("fault_")}
        srv2.close()
    finally:
        srv.close()
    a, b = _final_scores(whole["log"]), _final_scores(resumed["log"])
    twice = max(_scored_twice(whole["log"]), _scored_twice(resumed["log"]))
    figure = (f"{whole['scored']}/{n} scored + {whole['errors']} errors in {wall:.1f}s "
              f"({', '.join(f'{k[6:]} {v}' for k, v in faults.items())}); {twice} scored twice; "
              f"interrupted at half and resumed: {'equal' if a == b else 'DIFFERENT'} scores "
              f"({resumed['scored']}/{n})")
    return ("5% each 429/500/html/trickle/reset", figure, "all scored or errors, none twice, resume = uninterrupted")


def _final_scores(log: str) -> dict[str, float | None]:
    out = {}
    for line in open(log):
        rec = json.loads(line)
        if rec["type"] == "sample":
            out[rec["id"]] = rec["score"]
    return out


def _scored_twice(log: str) -> int:
    seen, twice = set(), 0
    for line in open(log):
        rec = json.loads(line)
        if rec["type"] == "sample" and rec.get("error") is None:
            twice += rec["id"] in seen
            seen.add(rec["id"])
    return twice


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--faults-n", type=int, default=2000, help="samples of the fault-injection scenario")
    args = ap.parse_args()
    rows: list[tuple[str, str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="evalkit-bench-"))
    env = {"EVALKIT_CACHE_DIR": str(tmp / "cache")}
    spec, key = make_eval(tmp, args.n)
    data = tmp / f"mc{args.n}.jsonl"
    floor_py = tmp / "floor.py"
    floor_py.write_text(FLOOR)
    counter = iter(range(10**6))

    def scenario(name: str, latency: float, concurrency: int | None, error_rate: float = 0.0):
        srv = Server(key, latency=latency, error_rate=error_rate, error_status=429, retry_after=1, seed=3)
        try:
            floor_conc = concurrency or 32
            floor_wall, floor_res = median_run(args.repeat, lambda i: timed(
                [sys.executable, str(floor_py), str(data), srv.url, str(floor_conc)])) if not error_rate else (None, None)
            extra = ["--no-cache"] + (["--concurrency", str(concurrency)] if concurrency else [])
            if error_rate:
                extra += ["--max-retries", "20"]
            wall, res = median_run(args.repeat, lambda i: timed(
                evalkit_cmd(spec, srv.url, tmp / f"logs{next(counter)}", *extra), env))
            summary = json.loads(res.stdout)
            return floor_wall, wall, summary, srv.stats()
        finally:
            srv.close()

    # 1. latency 200 ms, concurrency 100
    floor, wall, s, _ = scenario("200ms", 0.2, 100)
    ideal = -(-args.n // 100) * 0.2
    rows.append(("latency 200 ms, --concurrency 100", f"evalkit {wall:.2f}s, floor {floor:.2f}s: {wall / floor:.2f}x floor, "
                 f"{wall / ideal:.2f}x ideal ({ideal:.1f}s)", "<= 1.25x floor (stretch <= 1.5x ideal)"))
    assert s["scored"] == args.n and s["metrics"]["accuracy"]["value"] == 1.0, s

    # 2. latency 0, default concurrency
    floor0, wall0, s0, _ = scenario("0ms", 0.0, None)
    rows.append(("latency 0 ms, default concurrency", f"evalkit {wall0:.2f}s, floor {floor0:.2f}s (semaphore 32): "
                 f"{wall0 / floor0:.2f}x floor", "<= 1.25x floor"))

    # 3. 10% of requests answered 429 with Retry-After: 1 (against the error-free run of the same setting)
    _, wall_err, s_err, st = scenario("errors", 0.0, None, error_rate=0.1)
    recs = [json.loads(l) for l in open(s_err["log"]) if '"type":"sample"' in l]
    ids = [r["id"] for r in recs]
    # The floor of this scenario is set by the server, not the runner: a sample refused k times in a
    # row cannot finish sooner than k x Retry-After after its first attempt, so the longest chain
    # among the last samples started adds that many whole seconds to any honest client's wall time.
    chain = max(r["attempts"] for r in recs) - 1
    rows.append(("10% 429 + Retry-After: 1", f"{s_err['scored']}/{args.n} scored, {len(ids) - len(set(ids))} duplicated, "
                 f"{s_err['requests']['retries']} 429s retried, longest chain {chain} x 1 s, "
                 f"{wall_err:.2f}s = {wall_err / wall0:.2f}x error-free",
                 "all scored, none duplicated, <= 2x"))

    # 4. a second identical run: from the run log (same command) and from the cache (new log dir)
    srv = Server(key)
    try:
        logdir = tmp / "again"
        timed(evalkit_cmd(spec, srv.url, logdir), env)
        before = srv.stats()["requests"]
        w_log, r_log = median_run(args.repeat, lambda i: timed(evalkit_cmd(spec, srv.url, logdir), env))
        w_cache, r_cache = median_run(args.repeat, lambda i: timed(
            evalkit_cmd(spec, srv.url, tmp / f"fresh{next(counter)}"), env))
        sent = srv.stats()["requests"] - before
        c = json.loads(r_cache.stdout)
        rows.append(("second identical run", f"same command (log): {w_log:.2f}s; new log dir (cache): {w_cache:.2f}s, "
                     f"{c['requests']['cached']} cached, {sent} requests sent", "0 requests, <= 1.5s"))
    finally:
        srv.close()

    # 5. peak RSS of a big eval
    if not args.skip_big:
        big_spec, big_key = make_eval(tmp, args.big)
        srv = Server(big_key)
        try:
            cmd = evalkit_cmd(big_spec, srv.url, tmp / "big", "--no-cache")
            cmd[1:3] = ["-c", RSS_WRAPPER]     # the same CLI, reporting its own peak RSS at exit
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
            wall_big = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-2000:])
            rss_mb = int(proc.stderr.split("MAXRSS_KB ")[-1].split()[0]) / 1024
            sb = json.loads(proc.stdout)
            rows.append((f"{args.big:,}-sample eval", f"peak RSS {rss_mb:.0f} MB (the evalkit process), "
                         f"{sb['scored']:,} scored in {wall_big:.1f}s", "<= 200 MB"))
        finally:
            srv.close()

    # 6. a hostile server: 5% each of 429s, 500s, HTML bodies, trickled replies and dropped connections
    rows.append(fault_injection(tmp, env, args.faults_n))

    # 7. start-up
    w_help, _ = median_run(5, lambda i: timed([sys.executable, "-m", "evalkit", "--help"]))
    w_list, _ = median_run(5, lambda i: timed([sys.executable, "-m", "evalkit", "list"]))
    rows.append(("evalkit --help / list", f"{w_help:.2f}s / {w_list:.2f}s", "<= 0.3s / <= 1s"))

    width = max(len(r[0]) for r in rows)
    print(f"evalkit runner benchmark: {args.n} questions, median of {args.repeat}, {os.cpu_count()} cores")
    for name, figure, target in rows:
        print(f"{name:<{width}}  {figure}  [target {target}]")


if __name__ == "__main__":
    main()
