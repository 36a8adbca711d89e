#!/usr/bin/env python3
"""Speed and memory of evalkit's runner against the floor of the plain `openai` client.

    python scripts/bench.py [--n 1000] [--big 100000] [--repeat 3] [--skip-big] [--only NAME,...]
                            [--baseline DIR]

Starts `evalkit.testserver` (in its own process) with a chosen latency and error rate, runs a
generated N-question multiple-choice eval through the real CLI (and, with injected faults, checks
that nothing is lost or scored twice, also across an interrupted and resumed run), and in the same
session measures
the floor: the same prompts sent by a minimal loop (one shared `AsyncOpenAI` client, a semaphore,
a letter check, nothing else), whole process timed from start to exit just as evalkit is. Each
figure is the median of --repeat runs. Printed as a table with each ratio and its target.

Scaling past one endpoint (`capacity`, `replicas`): a one-slot server (0.3 s a reply, --timeout 5,
60 questions) against the serial time and the requests wasted; a server with 1 s latency and room
for 128 (1,000 questions) with the adaptive limit against a fixed --concurrency 128; two replicas
against one (throughput); one of two replicas killed halfway. `--baseline DIR` runs the same
evalkit commands from another checkout too (e.g. `git worktree add /tmp/main main`), side by side
in the same session, so "not slower" is measured, not remembered.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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

    def requests(self) -> list[dict]:
        """The last 1,000 requests received, each with its arrival time `t` (time.monotonic())."""
        import urllib.request

        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/requests") as r:
            return json.load(r)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of the command, and its result with `cpu`: the CPU seconds it used (user and
    system), a figure a loaded machine disturbs far less than wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})},
                         cwd=(env or {}).get("PYTHONPATH"))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res.cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if res.returncode != 0:
        raise SystemExit(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return wall, res


def evalkit_cmd(spec: Path, url: str | list[str], logdir: Path, *extra: str) -> list[str]:
    urls = [a for u in ([url] if isinstance(url, str) else url) for a in ("--base-url", u)]
    return [sys.executable, "-m", "evalkit", "run", str(spec), "--model", "openai/m", *urls,
            "--json", "--quiet", "--log-dir", str(logdir), *extra]


def baseline_env(env: dict, baseline: str | None) -> dict:
    """The environment that runs another checkout's evalkit: its folder first on sys.path (and the
    working directory of the command, which `python -m` puts before everything)."""
    return {**env, "PYTHONPATH": baseline} if baseline else env


def one_slot(tmp: Path, env: dict, repeat: int, baseline: str | None) -> tuple[str, str, str]:
    """60 questions, a server computing one reply at a time (0.3 s each), --timeout 5: the adaptive
    limit against the serial time (--concurrency 1), and the requests wasted (sent again after a
    timeout; the server computed the abandoned ones anyway). Each setting has its own server (its
    counts are its own) and the settings take turns, so they share the machine's load."""
    spec, key = make_eval(tmp, 60)
    settings = [("--concurrency 1", ["--concurrency", "1"], env), ("adaptive", [], env),
                ("--concurrency 32", ["--concurrency", "32"], env)] + \
        ([("baseline's default", [], baseline_env(env, baseline))] if baseline else [])
    servers = [Server(key, slots=1, latency=0.3) for _ in settings]
    walls: dict[str, list[float]] = {label: [] for label, _, _ in settings}
    scored: dict[str, list[int]] = {label: [] for label, _, _ in settings}
    try:
        for _ in range(repeat):
            for (label, extra, run_env), srv in zip(settings, servers):
                wall, res = timed(evalkit_cmd(spec, srv.url, tmp / f"slot{time.monotonic_ns()}", "--no-cache",
                                              "--timeout", "5", "--fail-on-error", "60", *extra), run_env)
                walls[label].append(wall)
                scored[label].append(json.loads(res.stdout)["scored"])
        stats = [srv.stats() for srv in servers]
    finally:
        for srv in servers:
            srv.close()
    cells = []
    for (label, _, _), st in zip(settings, stats):
        sent, abandoned = st["requests"] / repeat, st.get("abandoned", 0) / repeat
        cells.append(f"{label} {statistics.median(walls[label]):.1f}s, {min(scored[label])}/60 scored, {sent:.0f} "
                     f"sent, {sent - 60:.0f} wasted ({(sent - 60) / 60:.0%}), {abandoned:.0f} abandoned")
    ratio = statistics.median(walls["adaptive"]) / statistics.median(walls["--concurrency 1"])
    return ("one slot, 0.3 s/reply, --timeout 5, 60 q", f"adaptive {ratio:.2f}x serial (--concurrency 1; the "
            f"server alone needs {60 * 0.3:.0f}s); " + "; ".join(cells), "adaptive ~ serial time, <= 10% wasted")


def room_for_128(tmp: Path, env: dict, repeat: int, baseline: str | None, n: int) -> tuple[str, str, str]:
    """n questions, 1 s a reply, a server with room for 128 at once: the adaptive limit against a fixed
    --concurrency 128 (the limit must grow fast where there is room), the settings taking turns."""
    spec, key = make_eval(tmp, n)
    settings = [(["--concurrency", "128"], env), ([], env)] + ([([], baseline_env(env, baseline))] if baseline else [])
    srv = Server(key, slots=128, latency=1.0)
    walls: list[list[float]] = [[] for _ in settings]
    try:
        for _ in range(repeat):
            for (extra, run_env), out in zip(settings, walls):
                out.append(timed(evalkit_cmd(spec, srv.url, tmp / f"r128{time.monotonic_ns()}", "--no-cache", *extra),
                                 run_env)[0])
    finally:
        srv.close()
    fixed, adaptive, *base = [statistics.median(w) for w in walls]
    extra = f"; baseline's default {base[0]:.2f}s" if base else ""
    return (f"1 s/reply, room for 128, {n} q", f"adaptive {adaptive:.2f}s, --concurrency 128 {fixed:.2f}s: "
            f"{adaptive / fixed:.2f}x{extra}", "<= 1.25x fixed 128")


def two_replicas(tmp: Path, env: dict, repeat: int, n: int) -> tuple[str, str, str]:
    """Throughput of two replicas against one, each replica a server with 2 slots at 200 ms a reply
    (10 replies/s: the servers, not the client's CPU, are what limits, as with GPU servers; with more
    slots on a busy 2-core machine the client's CPU is the limit, and a fixed --concurrency does no
    better), the limit adaptive per replica. Throughput is requests per second between the first
    and the last arrival at the servers (their clocks are this machine's monotonic clock): the
    process's start-up, a fixed few seconds on a loaded machine, is no part of it; the whole-run
    rate is printed too."""
    spec, key = make_eval(tmp, n)
    servers = [Server(key, slots=2, latency=0.2) for _ in range(2)]
    rates: list[list[float]] = [[], []]
    whole: list[list[float]] = [[], []]
    try:
        for _ in range(repeat):                          # one and two in turn: the same load on both
            for used, out, out_whole in zip((servers[:1], servers), rates, whole):
                start = time.monotonic()
                r = json.loads(timed(evalkit_cmd(spec, [s.url for s in used], tmp / f"rep{time.monotonic_ns()}",
                                                 "--no-cache"), env)[1].stdout)
                assert r["scored"] == n, r
                arrivals = sorted(q["t"] for s in used for q in s.requests()
                                  if q["t"] >= start and q["path"].endswith("/chat/completions"))
                out.append((len(arrivals) - 1) / (arrivals[-1] - arrivals[0]))
                out_whole.append(n / r["duration_s"])
    finally:
        for srv in servers:
            srv.close()
    (one, two), (one_w, two_w) = [[statistics.median(r) for r in rs] for rs in (rates, whole)]
    return (f"two replicas vs one (2 slots, 200 ms each), {n} q", f"one {one:.1f}/s, two {two:.1f}/s: {two / one:.2f}x "
            f"(whole runs, start-up included: {one_w:.1f}/s, {two_w:.1f}/s)", ">= 1.8x")


def replica_dies(tmp: Path, env: dict, n: int) -> tuple[str, str, str]:
    """Two replicas; the second is killed when half the samples are answered. Nothing may be lost
    or scored twice: its requests in flight are retried on the first."""
    spec, key = make_eval(tmp, n)
    servers = [Server(key, slots=4, latency=0.2) for _ in range(2)]
    try:
        cmd = evalkit_cmd(spec, [s.url for s in servers], tmp / "dies", "--no-cache")
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while sum(s.stats().get("completions", 0) for s in servers) < n // 2:
            time.sleep(0.02)
        served_by_dead = servers[1].stats()["completions"]
        servers[1].close()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        s = json.loads(out)
        survivor = servers[0].stats()["completions"]
    finally:
        servers[0].close()
    twice = _scored_twice(s["log"])
    return ("one of two replicas killed halfway", f"{s['scored']}/{n} scored, {s['errors']} errors, {twice} scored "
            f"twice; answered: {served_by_dead} by the dead one before it died + {survivor} by the survivor "
            f"(= {served_by_dead + survivor - n:+d} against {n}), {s['requests']['retries']} retried",
            "all scored, none lost or twice")


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


def runner_rows(args: argparse.Namespace, tmp: Path, env: dict) -> list[tuple[str, str, str]]:
    """The runner against the floor: 200 ms and 0 ms latency, 429s, second runs, memory, faults, start-up."""
    rows: list[tuple[str, str, str]] = []
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
            envs = [env] + ([baseline_env(env, args.baseline)] if args.baseline and name == "200ms" else [])
            runs = [[timed(evalkit_cmd(spec, srv.url, tmp / f"logs{next(counter)}", *extra), e) for e in envs]
                    for _ in range(args.repeat)]      # this checkout and the baseline in turn: the same load on both
            wall, res = median_run(args.repeat, lambda i: runs[i][0])
            if name == "200ms":
                args.cpu_200ms = [statistics.median(r[k][1].cpu for r in runs) for k in range(len(envs))]
            if len(envs) > 1:
                args.baseline_200ms = median_run(args.repeat, lambda i: runs[i][1])[0]
            summary = json.loads(res.stdout)
            return floor_wall, wall, summary, srv.stats()
        finally:
            srv.close()

    # 1. latency 200 ms, concurrency 100
    floor, wall, s, _ = scenario("200ms", 0.2, 100)
    ideal = -(-args.n // 100) * 0.2
    cpu = args.cpu_200ms
    base = f"; CPU {cpu[0]:.2f}s" + (f"; baseline {args.baseline_200ms:.2f}s, CPU {cpu[1]:.2f}s"
                                     if args.baseline_200ms else "")
    rows.append(("latency 200 ms, --concurrency 100", f"evalkit {wall:.2f}s, floor {floor:.2f}s: {wall / floor:.2f}x floor, "
                 f"{wall / ideal:.2f}x ideal ({ideal:.1f}s){base}", "<= 1.25x floor (stretch <= 1.5x ideal), "
                 "not slower than the baseline"))
    assert s["scored"] == args.n and s["metrics"]["accuracy"]["value"] == 1.0, s
    if args.only_200ms:
        return rows

    # 2. latency 0, default concurrency
    floor0, wall0, s0, _ = scenario("0ms", 0.0, None)
    rows.append(("latency 0 ms, default concurrency", f"evalkit {wall0:.2f}s, floor {floor0:.2f}s (semaphore 32): "
                 f"{wall0 / floor0:.2f}x floor", "<= 1.25x floor"))

    # 3. 10% of requests answered 429 with Retry-After: 1 (against the error-free run of the same setting)
    _, wall_err, s_err, st = scenario("errors", 0.0, None, error_rate=0.1)
    recs = [json.loads(line) for line in open(s_err["log"]) if '"type":"sample"' in line]
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

    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--faults-n", type=int, default=2000, help="samples of the fault-injection scenario")
    ap.add_argument("--only", help="comma-separated scenarios: runner (or only its first row: 200ms), capacity, "
                                   "replicas (default: all)")
    ap.add_argument("--baseline", help="another checkout of evalkit, run side by side (e.g. a worktree of main)")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else {"runner", "capacity", "replicas"}
    tmp = Path(tempfile.mkdtemp(prefix="evalkit-bench-"))
    env = {"EVALKIT_CACHE_DIR": str(tmp / "cache")}
    args.baseline_200ms = None
    args.only_200ms = "200ms" in only and "runner" not in only
    rows = runner_rows(args, tmp, env) if only & {"runner", "200ms"} else []
    if "capacity" in only:
        rows.append(one_slot(tmp, env, args.repeat, args.baseline))
        rows.append(room_for_128(tmp, env, args.repeat, args.baseline, args.n))
    if "replicas" in only:
        rows.append(two_replicas(tmp, env, args.repeat, min(args.n, 240)))
        rows.append(replica_dies(tmp, env, min(args.n, 400)))
    width = max(len(r[0]) for r in rows)
    print(f"evalkit runner benchmark: {args.n} questions, median of {args.repeat}, {os.cpu_count()} cores")
    for name, figure, target in rows:
        print(f"{name:<{width}}  {figure}  [target {target}]")


if __name__ == "__main__":
    main()
