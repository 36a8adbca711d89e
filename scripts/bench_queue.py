#!/usr/bin/env python3
"""A one-slot server whose queue outlasts --idle-timeout, against the serial ideal (issue 29).

    python scripts/bench_queue.py [--n 40] [--latency 0.25] [--idle-timeout 1] [--repeat 3]

A test server computing one reply at a time (`--slots 1`, L seconds each) and evalkit's default
limit with `--idle-timeout T`, 8·L > T: the first wave of 8 waits longer than T for its first
byte. Printed: the run's own time (`duration_s`) and the wall time of the process against the
serial ideal n·L, and the server's counts (requests sent, abandoned, i.e. re-sent work). Then a
server with 16 slots, and the peak in flight there. Target: 0 abandoned, requests == n, within
15% of n·L; 16 in flight on 16 slots. Timed here, not in tests: the machine may be busy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import Server, evalkit_cmd, make_eval, timed  # noqa: E402


def scenario(tmp: Path, n: int, slots: int, latency: float, idle: float, repeat: int) -> dict:
    spec, key = make_eval(tmp, n)
    walls, runs, peaks = [], [], []
    srv = Server(key, slots=slots, latency=latency)
    try:
        for i in range(repeat):
            wall, res = timed(evalkit_cmd(spec, srv.url, tmp / f"logs{slots}-{i}", "--no-cache",
                                          "--idle-timeout", str(idle)))
            s = json.loads(res.stdout)
            walls.append(wall)
            runs.append(s["duration_s"])
            peaks.append(s["requests"]["peak_concurrency"])
        stats = srv.stats()
    finally:
        srv.close()
    return {"wall": statistics.median(walls), "run": statistics.median(runs), "peak": max(peaks),
            "requests": stats["requests"] / repeat, "abandoned": stats.get("abandoned", 0) / repeat}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--latency", type=float, default=0.25)
    p.add_argument("--idle-timeout", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = scenario(Path(tmp), a.n, 1, a.latency, a.idle_timeout, a.repeat)
        ideal = a.n * a.latency
        print(f"one slot, {a.latency:g} s/reply, --idle-timeout {a.idle_timeout:g}, {a.n} q: run {one['run']:.2f}s "
              f"({one['run'] / ideal:.2f}x the serial ideal {ideal:g}s), process {one['wall']:.2f}s "
              f"({one['wall'] / ideal:.2f}x); {one['requests']:.0f} requests, {one['abandoned']:.0f} abandoned, "
              f"peak {one['peak']} in flight   [target: {a.n} requests, 0 abandoned, <= 1.15x]")
        many = scenario(Path(tmp), 6 * 16, 16, a.latency, a.idle_timeout, a.repeat)
        print(f"16 slots, {a.latency:g} s/reply, 96 q: peak {many['peak']} in flight, {many['requests']:.0f} requests, "
              f"{many['abandoned']:.0f} abandoned, run {many['run']:.2f}s   [target: peak >= 16]")


if __name__ == "__main__":
    main()
