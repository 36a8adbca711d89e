#!/usr/bin/env python3
"""evalkit against a real OpenAI-compatible server: `transformers serve` on the converted Gemma 3 270M.

    EVALKIT_DATA_DIR=../shared/data python scripts/bench_serve.py [--mmlu 8] [--gsm8k 4] [--cache DIR]
        [--no-before]

What it does, as a new user would:
1. installs `transformers serve` (TRANSFORMERS, pinned, with its `serving` extra: fastapi,
   uvicorn, ...) into its own virtualenv under the cache folder (`<cache>/serve-venv`). torch is
   not installed again: a `.pth` line lets that virtualenv see evalkit's own site-packages after
   its own, so it borrows evalkit's CPU torch instead of pulling a multi-GB CUDA build; its own
   transformers and serving packages come first;
2. converts the GGUF with evalkit (`local/gemma-3-270m`, once, cached) and serves that folder as it
   is on 127.0.0.1 (`transformers serve gemma-3-270m`, a link to the folder, so the model id is
   short; the folder's chat template builds the prompt);
3. runs `--mmlu` MMLU and `--gsm8k` GSM8K samples with default settings through the CLI against
   the server, with the stops (after) and with `--no-stop` (before: what evalkit sent until stops
   existed), and the same through `local/gemma-3-270m`;
4. prints per run: wall time, requests sent and re-sent (retries), completion tokens per sample,
   finish reasons, and whether prompts (`messages_sha256`) and completions match `local/`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRANSFORMERS = "5.25.0"
MODEL_ID = "gemma-3-270m"


def serve_venv(cache: Path) -> Path:
    """`transformers serve` in its own virtualenv (see the module docstring); its `transformers`."""
    venv = cache / "serve-venv"
    exe = venv / "bin" / "transformers"
    if exe.exists() and _version(venv) == TRANSFORMERS:
        return exe
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    borrowed = [p for p in sys.path if p.endswith("site-packages") and Path(p, "torch").is_dir()]
    (site / "zz_evalkit_site.pth").write_text("".join(p + "\n" for p in borrowed[:1]))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["--ignore-installed", "--no-deps", f"transformers=={TRANSFORMERS}"], check=True)
    subprocess.run(pip + [f"transformers[serving]=={TRANSFORMERS}"], check=True)
    return exe


def _version(venv: Path) -> str | None:
    res = subprocess.run([str(venv / "bin" / "python"), "-c", "import transformers; print(transformers.__version__)"],
                         capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def evalkit(args: list[str], env: dict, log_dir: Path) -> tuple[list[dict], float]:
    """One `evalkit run ... --json`: (summaries, wall seconds)."""
    cmd = [sys.executable, "-m", "evalkit", "run", *args, "--json", "--quiet", "--no-cache", "--log-dir", str(log_dir)]
    started = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if res.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:8])} ... failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")], wall


def converted_folder(env: dict, tmp: Path) -> Path:
    """The folder evalkit converted the GGUF into (converting it now if it has not yet)."""
    evalkit(["mmlu.anatomy", "--model", "local/gemma-3-270m", "--limit", "1", "--shots", "0", "--answer-by",
             "logprob"], env, tmp / "convert")
    code = ("from evalkit.backends.local.loading import cache_folder, resolve; "
            "print(cache_folder(resolve('gemma-3-270m')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return Path(out.stdout.strip())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(exe: Path, folder: Path, port: int, log: Path) -> subprocess.Popen:
    """`transformers serve MODEL_ID` where MODEL_ID is a link to the folder: a server pinned to a
    folder answers only requests that name it as given, so the link keeps the model id short."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    (log.parent / MODEL_ID).symlink_to(folder, target_is_directory=True)
    proc = subprocess.Popen([str(exe), "serve", MODEL_ID, "--host", "127.0.0.1", "--port", str(port),
                             "--device", "cpu", "--format", "quiet"], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env=env, cwd=log.parent)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"transformers serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                return proc
        except OSError:
            time.sleep(1)
    proc.kill()
    raise SystemExit(f"transformers serve did not answer /health in 600 s:\n{log.read_text()[-3000:]}")


def samples(summary: dict) -> dict[str, dict]:
    lines = [json.loads(x) for x in Path(summary["log"]).read_text(encoding="utf-8").splitlines()]
    return {r["id"]: r for r in lines if r.get("type") == "sample"}


def row(name: str, summary: dict, wall: float, local: dict | None) -> str:
    recs = samples(summary)
    tokens = [r.get("usage", {}).get("completion_tokens", 0) for r in recs.values()]
    finish = sorted({str(r.get("finish_reason")) for r in recs.values()})
    req = summary["requests"]
    cells = [f"{name:38}", f"{summary['eval']:7}", f"{wall:7.1f}s", f"sent {req['sent']:3}",
             f"re-sent {req['retries']:2}", f"tokens/sample {sum(tokens) / max(len(tokens), 1):6.1f}",
             f"max {max(tokens, default=0):4}", f"finish {'/'.join(finish):11}",
             f"acc {summary['metrics'].get('accuracy', {}).get('value')}", f"errors {summary['errors']}"]
    if local is not None:
        theirs = samples(local)
        same_prompt = sum(recs[k].get("messages_sha256") == theirs.get(k, {}).get("messages_sha256") for k in recs)
        same_text = sum(recs[k].get("completion") == theirs.get(k, {}).get("completion") for k in recs)
        cells.append(f"same as local/: prompts {same_prompt}/{len(recs)}, completions {same_text}/{len(recs)}")
    return "  ".join(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mmlu", type=int, default=8, help="MMLU samples")
    ap.add_argument("--gsm8k", type=int, default=4, help="GSM8K samples")
    ap.add_argument("--cache", type=Path, help="folder for the virtualenv and the converted model "
                                               "(default: $EVALKIT_CACHE_DIR or ~/.cache/evalkit)")
    ap.add_argument("--no-before", action="store_true", help="skip the --no-stop runs")
    a = ap.parse_args()
    cache = (a.cache or Path(os.environ.get("EVALKIT_CACHE_DIR") or Path.home() / ".cache" / "evalkit")).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="evalkit-bench-serve-"))
    env = {**os.environ, "EVALKIT_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "unused-by-a-local-server"}
    exe = serve_venv(cache)
    folder = converted_folder(env, tmp)
    port = free_port()
    proc = start_server(exe, folder, port, tmp / "serve.log")
    url = f"http://127.0.0.1:{port}/v1"
    print(f"transformers {TRANSFORMERS} serve {folder} on {url}; logs in {tmp}", flush=True)
    try:
        report(a, env, url, tmp)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def report(a, env: dict, url: str, tmp: Path) -> None:
    plans = [("mmlu", a.mmlu), ("gsm8k", a.gsm8k)]
    variants = [("after (stops)", [])] + ([] if a.no_before else [("before (--no-stop)", ["--no-stop"])])
    for label, extra in variants:
        for name, n in plans:
            common = [name, "--limit", str(n), *extra]
            [local], lwall = evalkit(common + ["--model", "local/gemma-3-270m"], env, tmp / f"local-{len(extra)}")
            [served], swall = evalkit(common + ["--model", "openai/gemma-3-270m", "--base-url", url], env,
                                      tmp / f"serve-{len(extra)}")
            print(row(f"transformers serve, {label}", served, swall, local), flush=True)
            print(row(f"local/, {label}", local, lwall, None), flush=True)


if __name__ == "__main__":
    main()
