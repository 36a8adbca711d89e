#!/usr/bin/env python3
"""The local backend on Gemma 3 270M, side by side in one run: today's code, the new one, lm-eval.

    EVALKIT_DATA_DIR=../shared/data python scripts/bench_local.py [--subjects 4] [--n 12]
        [--cache DIR] [--no-lm-eval] [--profile]

Workload: 5-shot MMLU (the original prompt), the first `--n` test questions of each of
`--subjects` subjects (48 by default), by log-probability (`--answer-by logprob`, one forward
pass) and by generation (`--max-tokens 4`), each through the real CLI. Every row is its own
process: samples/s exclude model loading, peak memory is the process's maximum RSS.

Rows:
- today: the code before prefix reuse (git revision BASELINE, exported from this repository's
  history into a temporary folder), at its CPU default of batch 1;
- reuse off, batch 1: the current code with EVALKIT_LOCAL_PREFIX_MB=0 and --concurrency 1, i.e.
  today's algorithm (every prompt whole) with today's batching;
- evalkit: the current code with its defaults (prefix reuse, length-aware batching);
- lm-eval hf: lm-evaluation-harness (pinned, installed into its own virtualenv under the cache
  folder, torch 2.13.0 first so pip keeps the CPU build) scoring the very same prompts (read from
  evalkit's log) by loglikelihood of " A".." D" through a local task file and local JSON data,
  with the safetensors folder evalkit converted from the GGUF; HF_HUB_OFFLINE / HF_DATASETS_OFFLINE
  set. The letters it picks are compared with evalkit's.
All rows get OMP_WAIT_POLICY=PASSIVE except "today", which runs as it always did.
`--profile` samples the evalkit logprob row with py-spy (native frames) and prints where it spent.
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

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "8ec51c7"                 # the last commit before prefix reuse
LM_EVAL = "lm-eval[hf]==0.4.13"
SUBJECTS = ["anatomy", "astronomy", "college_biology", "high_school_geography", "marketing", "nutrition",
            "philosophy", "prehistory"]


def measured(cmd: list[str], env: dict, cwd: Path | None = None, wrap: list[str] | None = None) -> tuple[str, float]:
    """Run a process; (stdout, peak RSS in MB). Output goes through files so pipes never block."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen((wrap or []) + cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} ... failed:\n{errors[-3000:]}")
    return text, usage.ru_maxrss / 1024


def evalkit_row(code: Path, names: list[str], extra: list[str], env: dict, log_dir: Path, wrap=None) -> dict:
    cmd = [sys.executable, "-m", "evalkit", "run", *names, "--model", "local/gemma-3-270m", "--no-cache", "--json",
           "--quiet", "--log-dir", str(log_dir), *extra]
    text, rss = measured(cmd, {**env, "PYTHONPATH": str(code)}, cwd=code, wrap=wrap)
    summaries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    seconds = sum(s["duration_s"] - (s["backend"]["load_seconds"] or 0) for s in summaries)
    n = sum(s["n"] for s in summaries)
    return {"n": n, "seconds": seconds, "rate": n / seconds, "rss": rss, "summaries": summaries}


def baseline_code(tmp: Path) -> Path | None:
    """Today's evalkit, exported from git at BASELINE (None when there is no git history)."""
    dest = tmp / "baseline"
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE, "evalkit"], capture_output=True)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def accuracy(summaries: list[dict]) -> float:
    return sum(s["metrics"]["accuracy"]["value"] * s["n"] for s in summaries) / sum(s["n"] for s in summaries)


def letters(summaries: list[dict]) -> dict[str, str]:
    return {r["id"]: r["extracted"] for s in summaries for r in map(json.loads, open(s["log"]))
            if r.get("type") == "sample"}


LM_EVAL_RUNNER = r'''
import json, resource, sys, time
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

folder, tasks, batch = sys.argv[1], sys.argv[2], sys.argv[3]
started = time.perf_counter()
lm = HFLM(pretrained=folder, device="cpu", dtype="float32", batch_size=int(batch), add_bos_token=True)
loaded = time.perf_counter() - started
spent = [0.0]
scoring = lm.loglikelihood


def timed(*args, **kwargs):             # the model's own share: scoring the requests, nothing else
    t = time.perf_counter()
    try:
        return scoring(*args, **kwargs)
    finally:
        spent[0] += time.perf_counter() - t


lm.loglikelihood = timed
started = time.perf_counter()
res = simple_evaluate(model=lm, tasks=["evalkit_mmlu"], task_manager=TaskManager(include_path=tasks),
                      num_fewshot=0, log_samples=True)
seconds = time.perf_counter() - started
picked = {}
for s in res["samples"]["evalkit_mmlu"]:
    scores = [r[0] for r in s["filtered_resps"]]
    picked[s["doc"]["id"]] = "ABCD"[scores.index(max(scores))]
print(json.dumps({"seconds": seconds, "scoring": spent[0], "load": loaded, "letters": picked,
                  "acc": res["results"]["evalkit_mmlu"]["acc,none"]}))
'''

TASK = """task: evalkit_mmlu
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{prompt}}}}"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: "{{{{gold}}}}"
target_delimiter: " "
metric_list:
  - metric: acc
"""


def lm_eval_venv(cache: Path) -> Path:
    """lm-eval in its own virtualenv (kept in the cache folder): torch 2.13.0 first (the CPU build),
    then the pinned lm-eval with the transformers version evalkit runs."""
    import transformers

    venv = cache / "lm-eval-venv"
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import lm_eval.models.huggingface"], capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["torch==2.13.0"], check=True)
    subprocess.run(pip + [LM_EVAL, f"transformers=={transformers.__version__}", "torch==2.13.0"], check=True)
    return python


def lm_eval_row(cache: Path, tmp: Path, logprob: dict, env: dict, batch: int) -> dict:
    """lm-eval's hf backend on the prompts evalkit logged, through a local task file."""
    docs = tmp / "docs.jsonl"
    with open(docs, "w") as fh:
        for s in logprob["summaries"]:
            for r in map(json.loads, open(s["log"])):
                if r.get("type") == "sample":
                    fh.write(json.dumps({"id": r["id"], "prompt": r["messages"][-1]["content"],
                                         "gold": "ABCD".index(r["target"])}) + "\n")
    tasks = tmp / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "evalkit_mmlu.yaml").write_text(TASK.format(docs=docs))
    folder = next((cache / "local-models").iterdir())
    python = lm_eval_venv(cache)
    offline = {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp / "hf-datasets")}
    text, rss = measured([str(python), "-c", LM_EVAL_RUNNER, str(folder), str(tasks), str(batch)], offline)
    out = json.loads(text.strip().splitlines()[-1])
    n = len(out["letters"])
    # Its rate counts only the time inside loglikelihood (the model's work), which flatters lm-eval:
    # evalkit's rows count everything but loading. Its whole evaluate call is reported beside it.
    return {"n": n, "seconds": out["scoring"], "rate": n / out["scoring"], "rss": rss, "letters": out["letters"],
            "acc": out["acc"], "whole": n / out["seconds"]}


def profile(code: Path, names: list[str], env: dict, tmp: Path) -> list[tuple[str, float]]:
    """Where the evalkit logprob row spends its time: py-spy's samples (native frames included),
    by innermost frame, as shares of all samples."""
    import shutil

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    raw = tmp / "profile.txt"
    evalkit_row(code, names, ["--answer-by", "logprob"], env, tmp / "lp-profile",
                wrap=[spy, "record", "--native", "--format", "raw", "-r", "25", "-o", str(raw), "--"])
    leaves: dict[str, float] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.split(";")[-1].split(" (")[0]
        leaves[leaf] = leaves.get(leaf, 0) + int(count)
        total += int(count)
    return sorted(((k, v / total) for k, v in leaves.items()), key=lambda kv: -kv[1])[:12]


def table(rows: dict[str, dict]) -> None:
    today = rows.get("today") or rows["reuse off, batch 1"]
    print(f"{'':22} {'logprob/s':>10} {'x today':>8} {'gen/s':>8} {'x today':>8} {'peak RSS MB':>12}")
    for name, r in rows.items():
        lp, gen = r["logprob"], r.get("gen")
        cells = [f"{lp['rate']:10.3f}", f"{lp['rate'] / today['logprob']['rate']:7.2f}x"]
        cells += [f"{gen['rate']:8.3f}", f"{gen['rate'] / today['gen']['rate']:7.2f}x"] if gen else [f"{'-':>8}", f"{'-':>8}"]
        rss = max(lp["rss"], gen["rss"] if gen else 0)
        print(f"{name:22} {' '.join(cells)} {rss:12.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=4, help=f"how many of: {', '.join(SUBJECTS)}")
    ap.add_argument("--n", type=int, default=12, help="questions per subject")
    ap.add_argument("--cache", type=Path, help="EVALKIT_CACHE_DIR to reuse (converted model, lm-eval venv)")
    ap.add_argument("--lm-eval-batch", type=int, default=1, help="lm-eval's batch size (1 is its default)")
    ap.add_argument("--no-lm-eval", action="store_true")
    ap.add_argument("--no-today", action="store_true", help="skip the baseline revision")
    ap.add_argument("--profile", action="store_true", help="py-spy the evalkit logprob row afterwards")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="evalkit-bench-local-"))
    cache = (a.cache or Path(os.environ.get("EVALKIT_CACHE_DIR") or tmp / "cache")).resolve()
    env = {**os.environ, "EVALKIT_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    if env.get("EVALKIT_DATA_DIR"):      # the baseline runs from another folder
        env["EVALKIT_DATA_DIR"] = str(Path(env["EVALKIT_DATA_DIR"]).resolve())
    env.pop("OMP_WAIT_POLICY", None)
    passive = {**env, "OMP_WAIT_POLICY": "PASSIVE"}
    names = [f"mmlu.{s}" for s in SUBJECTS[: a.subjects]]
    lp, gen = ["--answer-by", "logprob", "--limit", str(a.n)], ["--max-tokens", "4", "--limit", str(a.n)]
    old = None if a.no_today else baseline_code(tmp)
    variants = [("today", old, [], env), ("reuse off, batch 1", ROOT, ["--concurrency", "1"],
                                           {**passive, "EVALKIT_LOCAL_PREFIX_MB": "0"}),
                ("evalkit", ROOT, [], passive)]
    rows: dict[str, dict] = {}
    for name, code, extra, e in variants:
        if code is None:
            continue
        started = time.perf_counter()
        logged = ["--log-prompts"] if name == "evalkit" else []
        rows[name] = {"logprob": evalkit_row(code, names, lp + extra + logged, e, tmp / f"lp-{len(rows)}"),
                      "gen": evalkit_row(code, names, gen + extra, e, tmp / f"gen-{len(rows)}")}
        print(f"[{name}: {time.perf_counter() - started:.0f}s]", file=sys.stderr, flush=True)
    mine = letters(rows["evalkit"]["logprob"]["summaries"])
    if not a.no_lm_eval:
        rows[f"lm-eval hf (batch {a.lm_eval_batch})"] = {
            "logprob": lm_eval_row(cache, tmp, rows["evalkit"]["logprob"], passive, a.lm_eval_batch)}
    n = rows["evalkit"]["logprob"]["n"]
    print(f"Gemma 3 270M (Q4_K_M GGUF as float32), {os.cpu_count()} CPU cores, 5-shot MMLU, {len(names)} subjects "
          f"x {a.n} = {n} questions; samples/s without model loading; generation = 4 new tokens")
    table(rows)
    for name, r in rows.items():
        if name.startswith("lm-eval"):
            same = sum(mine[k] == v for k, v in r["logprob"]["letters"].items())
            print(f"letters chosen: evalkit and {name} agree on {same}/{len(mine)}; accuracy lm-eval "
                  f"{r['logprob']['acc']:.3f}, evalkit {accuracy(rows['evalkit']['logprob']['summaries']):.3f}; lm-eval's samples/s count its loglikelihood calls only "
                  f"(its whole evaluate call: {r['logprob']['whole']:.3f}/s)")
        elif name != "evalkit" and "summaries" in r["logprob"]:
            same = sum(mine[k] == v for k, v in letters(r["logprob"]["summaries"]).items())
            print(f"letters chosen: evalkit and {name} agree on {same}/{len(mine)}")
    reuse = rows["evalkit"]["logprob"]["summaries"][0]["backend"]
    print(f"evalkit backend (first subject): {json.dumps({k: reuse.get(k) for k in ('batch_tokens', 'prefix_reuse')})}")
    if a.profile:
        print("profile of the evalkit logprob row (py-spy, innermost frames):")
        for frame, share in profile(ROOT, names, passive, tmp):
            print(f"  {share:6.1%}  {frame}")


if __name__ == "__main__":
    main()
