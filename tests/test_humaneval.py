"""HumanEval end to end, the sandbox against hostile completions, and pass@k."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from conftest import read_jsonl

from evalkit.results.metrics import pass_at_k
from evalkit.scoring.sandbox import run_python
from evalkit.scoring.sandbox_limits import Limits, RunResult

# These tests look for sandbox processes and folders machine-wide: one worker runs them all.
pytestmark = pytest.mark.xdist_group("sandbox")

CANARY = Path("/tmp/evalkit-sandbox-canary")

HOSTILE = {
    "read outside": "def {f}(*a, **k):\n    return open('/etc/passwd').read()\n",
    "write outside": f"def {{f}}(*a, **k):\n    open('{CANARY}', 'w').write('pwned')\n",
    "socket": "import socket\ndef {f}(*a, **k):\n    socket.create_connection(('127.0.0.1', 80))\n",
    "fork bomb": "import os\ndef {f}(*a, **k):\n    while True:\n        os.fork()\n",
    "loop forever": "def {f}(*a, **k):\n    while True:\n        pass\n",
    "10 GB": "def {f}(*a, **k):\n    return bytearray(10 * 1024 ** 3)\n",
    "kill the parent": "import os\ndef {f}(*a, **k):\n    os.kill(os.getppid(), 9)\n",
}


def problems(data_dir: Path) -> list[dict]:
    with gzip.open(data_dir / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_canonical_pass_wrong_fail_hostile_contained(evalkit, start_server, data_dir, tmp_path):
    rows = problems(data_dir)
    assert len(rows) == 164
    CANARY.unlink(missing_ok=True)
    answers, expect = [], {}
    hostile = list(HOSTILE.items())
    for i, r in enumerate(rows):
        f = r["entry_point"]
        if i < len(hostile):
            reply = "```python\n" + hostile[i][1].format(f=f) + "```"
            expect[r["task_id"]] = 0.0
        elif i % 5 == 0:
            reply = f"```python\ndef {f}(*args, **kwargs):\n    return None\n```"          # known wrong
            expect[r["task_id"]] = 0.0
        elif i % 5 == 1:
            reply = "Here is the body:\n```python\n" + r["canonical_solution"] + "```"   # body only
            expect[r["task_id"]] = 1.0
        else:
            reply = "```python\n" + r["prompt"] + r["canonical_solution"] + "```"
            expect[r["task_id"]] = 1.0
        # The prompt's last lines (end of the docstring) identify the problem.
        answers.append({"match": r["prompt"], "reply": reply})
    server = start_server(answers)
    res = evalkit("run", "humaneval", "--model", "openai/m", "--base-url", server.url, "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["primary_metric"] == "pass@1" and s["n"] == s["scored"] == 164
    assert s["metrics"]["pass@1"]["value"] == pytest.approx(sum(expect.values()) / 164, abs=1e-6)
    recs = {r["id"]: r for r in read_jsonl(s["log"]) if r["type"] == "sample"}
    assert all(recs[t]["score"] == v for t, v in expect.items())
    verdicts = {name: recs[rows[i]["task_id"]]["extracted"] for i, (name, _) in enumerate(hostile)}
    # The sandbox's file system has no /etc/passwd, and its /tmp is a private tmpfs: the write
    # succeeds in there, the function returns None, and nothing reaches the host.
    assert "FileNotFoundError" in verdicts["read outside"] and "/etc/passwd" in verdicts["read outside"]
    assert verdicts["write outside"].startswith("failed: AssertionError") and not CANARY.exists()
    assert "ConnectionRefusedError" in verdicts["socket"]           # its own loopback, nothing listens
    assert verdicts["fork bomb"].startswith("limit: BlockingIOError: [Errno 11]")
    # the CPU limit, or on a machine so busy the loop gets less CPU than that, the wall-clock one
    assert verdicts["loop forever"].startswith(("timeout: CPU time limit", "timeout: still running after"))
    assert verdicts["10 GB"].startswith("limit: MemoryError")
    # Its parent is the checker, which it can kill: the run then ends with no verdict, a failure.
    assert verdicts["kill the parent"].startswith("killed: signal 9 (SIGKILL)")


def test_sandbox_limits_directly():
    assert run_python("assert sum(range(10)) == 45").passed
    out = run_python("x = 1\nraise SystemExit(3)")
    assert (out.passed, out.status, out.detail) == (False, "failed", "SystemExit: 3 (solution line 2)")
    slow = run_python("import time\ntime.sleep(30)", limits=Limits(wall_seconds=1))
    assert (slow.status, slow.detail) == ("timeout", "still running after 1 s (wall clock)")
    spin = run_python("while True:\n    pass", limits=Limits(cpu_seconds=1))
    assert (spin.status, spin.detail) == ("timeout", "CPU time limit of 1 s (signal 24, SIGXCPU)")
    inside = run_python("open('note.txt', 'w').write('ok')\nassert open('note.txt').read() == 'ok'")
    assert inside.passed, inside.detail
    env = run_python("import os\nassert dict(os.environ) == {}, os.environ")
    assert env.passed, env.detail
    test_fails = run_python("def f():\n    return 2", "assert f() == 1, 'f() is 2'")
    assert (test_fails.status, test_fails.detail) == ("failed", "AssertionError: f() is 2 (test line 1)")
    raises = run_python("def f():\n    return 1 / 0", "assert f() == 1")
    assert raises.detail == "ZeroDivisionError: division by zero (solution line 2, during the test)"


CHECK = "def check(candidate):\n    assert candidate(2) == 3\n    assert candidate(0) == 1\n\ncheck(f)\n"


def test_the_checker_process_directly():
    def run(body, test=CHECK):
        return run_python("def f(x):\n" + body, test, prelude="def f(x):\n    pass\n", entry="f")
    assert run("    return x + 1\n") == RunResult(True, "passed", "")
    assert run("    return 1 / x + 2.5\n").detail == "ZeroDivisionError: division by zero (solution line 2, during the test)"
    same = run("    class A:\n        __eq__ = lambda s, o: True\n    return A()\n")
    assert (same.status, same.detail) == ("failed", "the entry point returned a value of type A, not plain data "
                                                   "(solution, during the test)")
    assert run("    return x + 2\n").detail == "AssertionError (test line 2)"
    # a function cannot cross: the test falls back to the program's process, and says so
    callable_arg = "def check(candidate):\n    assert candidate(lambda v: v) == 3\n\ncheck(f)\n"
    assert run("    return x(3)\n", callable_arg) == RunResult(True, "passed", "in-process")
    assert run("    return x(4)\n", callable_arg).detail == "AssertionError (test line 2)"


def test_pass_at_k_estimator():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)          # 1 - C(3,2)/C(5,2)
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(10, 6, 5) == 1.0
    assert pass_at_k(20, 3, 10) == pytest.approx(1 - (17 * 16 * 15 * 14 * 13 * 12 * 11 * 10 * 9 * 8) /
                                                  (20 * 19 * 18 * 17 * 16 * 15 * 14 * 13 * 12 * 11))


def test_several_samples_per_problem(evalkit, start_server, data_dir):
    rows = problems(data_dir)[:3]
    answers = [{"match": r["prompt"], "reply": "```python\n" + r["prompt"] + r["canonical_solution"] + "```"}
               for r in rows[:2]]
    server = start_server(answers, default_reply="no code")
    res = evalkit("run", "humaneval", "--model", "openai/m", "--base-url", server.url, "--samples", "5",
                  "--temperature", "0.8", "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    recs = [r for r in read_jsonl(s["log"]) if r["type"] == "sample"]
    assert len(recs) == 164 * 5 and len({r["id"] for r in recs}) == 164 * 5
    assert server.stats()["requests"] == 164 * 5            # each sample asked with its own seed
    assert s["metrics"]["pass@1"]["value"] == pytest.approx(2 / 164, abs=1e-6)
    assert s["metrics"]["pass@5"]["value"] == pytest.approx(2 / 164, abs=1e-6)
    assert "pass@10" not in s["metrics"]                      # needs 10 samples per problem
    assert any("pass@10 not computed" in n for n in s["notes"])


# Every process holds what it can: memfd and SysV shared memory (not counted in the address
# space: refused), then resident memory up to its address-space limit; the parent fills /tmp too.
HOLD = r'''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
def hold():
    kept, extra, chunk = [], 0, b"\1" * (4 << 20)
    for _ in range(25):
        try:
            fd = os.memfd_create("m")
            os.write(fd, chunk)
            extra += 4 << 20
        except OSError:
            break
    shm = libc.shmget(0, 64 << 20, 0o1600)
    at = libc.shmat(shm, None, 0) if shm >= 0 else None
    if at not in (None, 2 ** 64 - 1):
        ctypes.memset(at, 1, 64 << 20)
        extra += 64 << 20
    try:
        while True:
            kept.append(b"\1" * (4 << 20))
    except MemoryError:
        pass
    pages = int(open("/proc/self/statm").read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") + extra, kept
r, w = os.pipe()
wait, _ = os.pipe()
children = []
while True:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        held, _ = hold()
        os.write(w, held.to_bytes(8, "big"))
        os.read(wait, 1)
        os._exit(0)
    children.append(pid)
total = sum(int.from_bytes(os.read(r, 8), "big") for _ in children)
n = 0
try:
    while True:
        open(f"/tmp/f{n}", "wb").write(b"\1" * (1 << 20))
        n += 1
except OSError:
    pass
total += sum(os.path.getsize(f"/tmp/{f}") for f in os.listdir("/tmp"))
mine, _ = hold()
raise RuntimeError(f"held {total + mine} in {len(children) + 1} processes")
'''


def test_memory_bound_holds():
    from evalkit.scoring.sandbox_limits import memory_bound

    limits = Limits(memory_mb=64, processes=6, disk_mb=16, file_mb=8, wall_seconds=60)
    out = run_python(HOLD, limits=limits)
    assert out.status == "failed" and out.detail.startswith("RuntimeError: held "), out.detail
    held = int(out.detail.split()[2])
    # at most the bound; and at least half of it, so the measurement did fill what it could
    assert memory_bound(limits) / 2 < held <= memory_bound(limits), (held, memory_bound(limits))
