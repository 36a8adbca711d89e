#!/usr/bin/env python3
"""Contamination-check speed: all 14,042 MMLU test questions against a generated 1 GB corpus.

    EVALKIT_DATA_DIR=../shared/data python scripts/bench_contamination.py [--gb 1.0]

The corpus is English-like text: words drawn from GSM8K's training problems, shuffled, with 20
MMLU questions planted at random places. It runs the real CLI (`evalkit contamination mmlu`),
checks the planted questions are found, and prints the scan speed the command measured (corpus
bytes / seconds from reading the first byte to the last match, probe building included) and the
whole process's wall time. Target: >= 50 MB/s on one core.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    args = ap.parse_args()
    data = Path(os.environ.get("EVALKIT_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    rng = random.Random(0)
    words = []
    with open(data / "gsm8k" / "train.jsonl", encoding="utf-8") as fh:
        for line in fh:
            words += json.loads(line)["question"].split()
    questions = []
    for f in sorted((data / "mmlu" / "test").glob("*.csv")):
        with open(f, newline="", encoding="utf-8") as fh:
            questions += [(f.name[:-9], i, r[0]) for i, r in enumerate(csv.reader(fh))]
    planted = rng.sample(questions, 20)
    tmp = Path(tempfile.mkdtemp(prefix="evalkit-contam-"))
    corpus = tmp / "corpus.txt"
    target = int(args.gb * 1e9)
    t0 = time.perf_counter()
    blocks = []
    for _ in range(4):                       # four distinct ~64 MB blocks, written in turn
        parts, size = [], 0
        while size < 64_000_000:
            rng.shuffle(words)
            parts.append(" ".join(words) + "\n")
            size += len(parts[-1])
        blocks.append("".join(parts))
    with open(corpus, "w", encoding="utf-8") as out:
        written, k = 0, 0
        while written < target:
            text = blocks[k % len(blocks)]
            for _, _, question in planted[2 * k: 2 * k + 2]:     # two per block: all 20 within 640 MB
                cut = text.find(" ", rng.randrange(len(text) - 100))
                text = text[:cut] + " " + question + " " + text[cut:]
            k += 1
            text = text[: target - written]
            out.write(text)
            written += len(text.encode("utf-8"))
    print(f"generated {written / 1e9:.2f} GB in {time.perf_counter() - t0:.0f}s ({len(planted)} questions planted)")
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "evalkit", "contamination", "mmlu", "--corpus", str(corpus), "--json"],
                         capture_output=True, text=True, env={**os.environ, "EVALKIT_DATA_DIR": str(data)})
    wall = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    r = json.loads(res.stdout)
    want = {f"{s}/{i}" for s, i, _ in planted}
    found = want & set(r["contaminated"])
    print(f"engine {r['engine']}: {r['probes']:,} probes from {r['n']:,} questions; "
          f"{r['corpus_bytes'] / 1e6:,.0f} MB scanned in {r['seconds']:.1f}s = {r['mb_per_s']} MB/s "
          f"(whole command {wall:.1f}s); planted found {len(found)}/{len(want)}; "
          f"{r['count']} contaminated in all  [target >= 50 MB/s]")
    corpus.unlink()


if __name__ == "__main__":
    main()
