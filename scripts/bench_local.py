#!/usr/bin/env python3
"""The local backend on Gemma 3 270M (2 CPU cores here): load times, throughput, overhead.

    EVALKIT_DATA_DIR=../shared/data python scripts/bench_local.py [--n 48] [--batch 1]

1. Load time: first (GGUF conversion, empty cache) and cached, as reported by the backend.
2. MMLU (5-shot) samples/s by log-probability (`--answer-by logprob`) and by generation
   (max 4 new tokens), through the real CLI; load time is subtracted.
3. The overhead: the same prompts (taken from evalkit's own log) run directly through the model in
   a plain loop with the same batch size, one forward pass each, against evalkit's logprob run.
   Target: evalkit <= 1.10 x the direct loop.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def evalkit(args: list[str], env: dict) -> dict:
    res = subprocess.run([sys.executable, "-m", "evalkit", "run", *args, "--json", "--quiet"], capture_output=True,
                         text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])
    return json.loads(res.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--batch", type=int, default=1, help="1 is the CPU default; try 4 or 16 to compare")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="evalkit-local-"))
    env = {**os.environ, "EVALKIT_CACHE_DIR": str(tmp / "cache"), "HF_HUB_OFFLINE": "1"}
    common = ["mmlu", "--model", "local/gemma-3-270m", "--limit", str(a.n), "--concurrency", str(a.batch), "--no-cache"]

    first = evalkit(common + ["--answer-by", "logprob", "--limit", "1", "--log-dir", str(tmp / "l0")], env)
    lp = evalkit(common + ["--answer-by", "logprob", "--log-prompts", "--log-dir", str(tmp / "l1")], env)
    gen = evalkit(common + ["--max-tokens", "4", "--log-dir", str(tmp / "l2")], env)
    lp_infer = lp["duration_s"] - lp["backend"]["load_seconds"]
    gen_infer = gen["duration_s"] - gen["backend"]["load_seconds"]

    # The direct loop: same prompts, same batches, one forward pass each, nothing else.
    prompts = [r["messages"][-1]["content"] for r in map(json.loads, open(lp["log"])) if r.get("type") == "sample"]
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = next((tmp / "cache" / "local-models").iterdir())
    torch.set_num_threads(os.cpu_count() or 1)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(prompts), a.batch):
            enc = tok(prompts[i:i + a.batch], return_tensors="pt", padding=True)
            logits = model(**enc, logits_to_keep=1).logits[:, -1, :]
            torch.topk(torch.log_softmax(logits.float(), -1), 50)
    direct = time.perf_counter() - start

    print(f"local backend, Gemma 3 270M (Q4_K_M GGUF, float32 on CPU), {os.cpu_count()} cores, batch {a.batch}, "
          f"MMLU 5-shot, {a.n} samples")
    print(f"load: first {first['backend']['load_seconds']:.1f}s (GGUF conversion), cached {lp['backend']['load_seconds']:.1f}s")
    print(f"by log-probability: {a.n / lp_infer:.2f} samples/s ({lp_infer:.1f}s), accuracy {lp['metrics']['accuracy']['value']:.3f}")
    print(f"by generation (4 tokens): {a.n / gen_infer:.2f} samples/s ({gen_infer:.1f}s)")
    print(f"direct loop, same prompts and batches: {direct:.1f}s -> evalkit overhead {lp_infer / direct:.2f}x "
          f"[target <= 1.10x]")


if __name__ == "__main__":
    main()
