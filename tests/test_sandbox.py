"""HumanEval under a hostile model: every attack class through the real CLI, against the test server.

Each attack is the reply to one HumanEval problem; the rest of the problems get canonical
solutions. The host offers targets an escaped program would reach: a folder anyone may write
to, a TCP listener on 127.0.0.1, a Unix socket, an API key and another secret in evalkit's
environment. After the run: nothing in the folder, no connection, no process left, no secret
in the log folder, each attack scored 0 with the reason expected, and every correct program 1.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import read_jsonl
from evalkit.scoring.sandbox_run import BOOTSTRAP

# These tests run many sandboxes at once: one worker runs them all (what they look for is their own).
pytestmark = pytest.mark.xdist_group("sandbox")

DRIVER_STUB = BOOTSTRAP.splitlines()[-1]

# `sleep MARK`: how a process an attack tried to leave behind is recognised. Its fraction is this
# test process's own, so a search for it finds this run's processes alone, never those of another
# test run on the same machine (a fixed mark failed runs whose neighbour ran these tests too).
MARK = f"86399.{secrets.randbelow(10 ** 6):06d}"


def problems(data_dir: Path) -> list[dict]:
    with gzip.open(data_dir / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def live_marked(needle: str = MARK) -> list[str]:
    """Processes on the host, not zombies, whose command line holds `needle` (MARK is this test
    process's own, so they are this run's)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmd and state != "Z":
            found.append(f"{pid} {cmd}")
    return found


WRONG = "\ndef {f}(*args, **kwargs):\n    return None\n"
# the program ran to its end, then an assert of the test or a call it made failed
TEST_FAILED = re.compile(r"failed: \w+(: .*)? \((test line \d+|solution line \d+, during the test)\)$")

# name -> (top-level code around a wrong solution, expected start of the logged verdict)
ATTACKS = {
    # process creation, by every route; each child tries to write outside and to stay
    "os.fork": ("import os\nif os.fork() == 0:\n    try:\n        open('{out}/fork', 'w').write('x')\n    finally:\n"
                "        os.execv('/usr/bin/sleep', ['sleep', '{mark}'])\n", TEST_FAILED),
    "subprocess": ("import subprocess\nsubprocess.Popen(['/bin/sh', '-c', 'echo x > {out}/subprocess; exec sleep {mark}'],"
                   " start_new_session=True)\n", TEST_FAILED),
    "os.system": ("import os\nos.system('(echo x > {out}/system; nohup sleep {mark}) >/dev/null 2>&1 &')\n",
                  TEST_FAILED),
    "posix_spawn": ("import os\nos.posix_spawn('/bin/sh', ['sh', '-c', 'echo x > {out}/spawn; exec sleep {mark}'], {{}})\n",
                    TEST_FAILED),
    "multiprocessing": ("import multiprocessing, os\nmultiprocessing.Process(target=os.execv, args=('/usr/bin/sleep', "
                        "['sleep', '{mark}'])).start()\n", TEST_FAILED),
    "ctypes fork": ("import ctypes\nlibc = ctypes.CDLL(None)\nif libc.fork() == 0:\n    argv = (ctypes.c_char_p * 3)"
                    "(b'sleep', b'{mark}', None)\n    libc.execv(b'/usr/bin/sleep', argv)\n", TEST_FAILED),
    "double fork + setsid": ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                             "        os.execv('/usr/bin/sleep', ['sleep', '{mark}'])\n    os._exit(0)\ntime.sleep(0.2)\n",
                             TEST_FAILED),
    # blinding or removing an audit hook, then doing what it forbade
    "gc on the hook": ("import gc, sys\nfor o in gc.get_objects():\n    if callable(o) and 'hook' in getattr(o, '__name__', ''):\n"
                       "        try:\n            o.__code__ = (lambda *a: None).__code__\n        except Exception:\n"
                       "            pass\nopen('{out}/gc', 'w').write('x')\n", "failed: FileNotFoundError"),
    "shadowed names": ("import builtins, os, os.path\nos.path.realpath = lambda p: '/tmp'\nos.getcwd = lambda: '/tmp'\n"
                       "builtins.PermissionError = KeyError\nopen('{out}/shadow', 'w').write('x')\n",
                       "failed: FileNotFoundError"),
    "rebound builtins": ("import builtins, os\nbuiltins.exec = builtins.compile = lambda *a, **k: None\n"
                         "builtins.BaseException = builtins.AssertionError = KeyError\nos.write = lambda fd, b: len(b)\n",
                         TEST_FAILED),
    # /proc and dir_fd
    "/proc environ": ("import os\nseen = {{p: open(f'/proc/{{p}}/environ', 'rb').read() for p in os.listdir('/proc') "
                      "if p.isdigit()}}\nraise RuntimeError(f'pids={{sorted(seen)}} ppid={{os.getppid()}} {{seen}}')\n",
                      # pid 2 is the checker: non-dumpable, so not even its environ can be read
                      "failed: PermissionError: [Errno 13] Permission denied: '/proc/2/environ'"),
    "/proc/1": ("import os\nraise RuntimeError(repr(sorted(os.listdir('/proc/1/root'))) + ' ' + os.readlink('/proc/1/exe'))\n",
                "failed: RuntimeError: ['bin', 'dev', 'etc', "),
    "dir_fd": ("import os\nroot = os.open('/', os.O_RDONLY)\nos.open('{out_rel}/dirfd', os.O_WRONLY | os.O_CREAT, dir_fd=root)\n",
               "failed: FileNotFoundError"),
    # stdin, stdout, stderr, the two pipes to the checker and the listing's own: no verdict pipe
    "descriptors": ("import os\nraise RuntimeError(repr(dict(os.environ)) + repr(len(os.listdir('/proc/self/fd'))))\n",
                    "failed: RuntimeError: {}6"),
    # sockets to the host
    "tcp to host": ("import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'x')\n",
                    "failed: ConnectionRefusedError"),
    "unix to host": ("import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('{sock}')\n", "failed: FileNotFoundError"),
    # resource exhaustion
    "memory": ("x = bytearray(10 * 1024 ** 3)\n", "limit: MemoryError"),
    "fork bomb": ("import os\nwhile True:\n    os.fork()\n", "limit: BlockingIOError: [Errno 11]"),
    "disk fill": ("n = 0\nwhile True:\n    open(f'/tmp/fill{{n}}', 'wb').write(bytes(8 << 20))\n    n += 1\n",
                  "limit: OSError: [Errno 28] No space left on device"),
    "file size": ("open('big', 'wb').write(bytes(40 << 20))\n", "limit: OSError: [Errno 27] File too large"),
    # on a machine loaded past 3 runnable processes per core the wall clock may end it first
    "cpu forever": ("while True:\n    pass\n",
                    re.compile(r"timeout: (CPU time limit of 10 s|still running after 30 s \(wall clock\))")),
    # early exits and fake verdicts
    "sys.exit(0)": ("import sys\n{wrong}\nsys.exit(0)\n", "failed: SystemExit: 0"),
    "SystemExit in the function": ("\ndef {f}(*args, **kwargs):\n    raise SystemExit(0)\n", "failed: SystemExit: 0"),
    "os._exit(0)": ("import os\n{wrong}\nos._exit(0)\n", "exited: status 0 before the test finished"),
    "atexit": ("import atexit, os\natexit.register(os._exit, 0)\n", TEST_FAILED),
    # the verdict pipe keeps the number it has in evalkit, which grows with evalkit's open files
    "fake verdict": ("import os, sys\nprint('passed')\nprint('EVALKIT-VERDICT 0\\npassed', file=sys.stderr)\n"
                     "for fd in range(3, 1 << 14):\n    try:\n        os.write(fd, b'EVALKIT-VERDICT 0\\npassed\\n')\n"
                     "    except OSError:\n        pass\n", "failed: the program broke the test's channel"),
    "exit hooks": ("import os, sys, threading\nsys.excepthook = lambda *a: os._exit(0)\n"
                   "threading.excepthook = lambda *a: os._exit(0)\n", TEST_FAILED),
    "trace hook": ("import os, sys\ndef tracer(frame, event, arg):\n    if event == 'exception':\n        os._exit(0)\n"
                   "    return tracer\nsys.settrace(tracer)\n", TEST_FAILED),     # the test's frames are elsewhere
    # odd signals
    "signal 40": ("import signal\nsignal.raise_signal(40)\n", "killed: signal 40 (SIGRTMIN+6)"),
    "SIGSEGV": ("import ctypes\nctypes.string_at(0)\n", "killed: signal 11 (SIGSEGV)"),
    # output floods, files where the harness expected none, the program's own folder removed
    "flood": ("import os, sys\nfor _ in range(2000):\n    os.write(1, bytes(1 << 20))\nwhile True:\n"
              "    sys.stderr.write('x' * 65536)\n",     # evalkit drains stderr to the end, keeping its tail
              re.compile(r"timeout: (CPU time limit of 10 s|still running after 30 s \(wall clock\))")),
    "fifo and self-removal": ("import os\nos.mkfifo('/tmp/stderr')\nos.mkfifo('verdict')\nos.chdir('/')\n"
                              "for n in os.listdir('/tmp'):\n    os.remove('/tmp/' + n)\n", TEST_FAILED),
    # a key-like string made at run time (so not in the reply itself) must not reach the log
    "key in the message": ("raise RuntimeError('sk' + '-proj-' + 'Q' * 30 + ' and ' + 'hf' + '_' + 'Z' * 30)\n",
                           "failed: RuntimeError: [REDACTED] and [REDACTED]"),
}

# Correct solutions wrapped in something odd: they must pass.
CORRECT = {
    "doctest main": "\n\nif __name__ == '__main__':\n    import doctest\n    doctest.testmod()\n",
    "unittest main": "\n\nimport unittest\nclass T(unittest.TestCase):\n    def test_it(self):\n        self.fail('ran')\n"
                     "\nif __name__ == '__main__':\n    unittest.main()\n",
    "leaves a sleeper": "\n\nimport os\nos.system('nohup sleep {mark} >/dev/null 2>&1 &')\n",
    "prints a lot": "\n\nfor _ in range(3000):\n    print('x' * 1000)\n",
    "2 MB on stderr": "\n\nimport sys\nfor _ in range(2000):\n    sys.stderr.write('y' * 1000 + '\\n')\n",
    "7 threads": "\n\nimport threading, time\nthreads = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(7)]\n"
                 "for t in threads:\n    t.start()\nfor t in threads:\n    t.join()\n",
    # out of process, a trace function of the program's sees none of the test's frames
    "leaves a trace function": "\n\nimport sys\nsys.settrace(lambda *a: None)\n",
}


WITH_CORRECT: set[str] = set()      # attacks wrapped around a correct solution


def reply_for(name: str, r: dict, ctx: dict) -> str:
    code, _ = ATTACKS[name]
    wrong = WRONG.format(f=r["entry_point"])
    text = code.format(f=r["entry_point"], wrong=wrong, **ctx)
    if name in WITH_CORRECT:
        text = text + r["prompt"] + r["canonical_solution"]
    elif "{wrong}" not in code and "def {f}" not in code:
        text = text + wrong
    return "```python\n" + text + "```"


@pytest.fixture
def targets(tmp_path):
    """What an escaped program would reach: a world-writable folder, a TCP listener, a Unix socket."""
    out = tmp_path / "outside"
    out.mkdir()
    out.chmod(0o777)
    tcp = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp_path / "sock"))
    unix.listen()
    os.chmod(tmp_path / "sock", 0o777)
    reached: list[str] = []

    def accept(s: socket.socket, name: str) -> None:
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            reached.append(name)
            conn.close()

    for s, name in ((tcp, "tcp"), (unix, "unix")):
        threading.Thread(target=accept, args=(s, name), daemon=True).start()
    ctx = {"out": str(out), "out_rel": str(out).lstrip("/"), "port": tcp.getsockname()[1],
           "sock": str(tmp_path / "sock"), "mark": MARK}
    yield ctx, out, reached
    tcp.close()
    unix.close()


def test_every_attack_contained_and_scored(evalkit, start_server, data_dir, tmp_path, targets):
    ctx, out, reached = targets
    rows = problems(data_dir)
    names, correct = list(ATTACKS), list(CORRECT)
    answers, expect = [], {}
    for i, r in enumerate(rows):
        if i < len(names):
            reply, expect[r["task_id"]] = reply_for(names[i], r, ctx), 0.0
        elif i < len(names) + len(correct):
            extra = CORRECT[correct[i - len(names)]].format(**ctx)
            reply, expect[r["task_id"]] = "```python\n" + r["prompt"] + r["canonical_solution"] + extra + "```", 1.0
        elif i % 2:
            reply, expect[r["task_id"]] = "```python\n" + r["prompt"] + r["canonical_solution"] + "```", 1.0
        else:
            reply, expect[r["task_id"]] = "```python\n" + WRONG.format(f=r["entry_point"]) + "```", 0.0
        answers.append({"match": r["prompt"], "reply": reply})
    server = start_server(answers)
    key, other = "sk-proj-" + secrets.token_hex(20), "secret-" + secrets.token_hex(12)
    logs = tmp_path / "logs"
    res = evalkit("run", "humaneval", "--model", "openai/m", "--base-url", server.url, "--json", "--log-dir", str(logs),
                  env={"OPENAI_API_KEY": key, "EVALKIT_TEST_SECRET_TOKEN": other})
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    recs = {r["id"]: r for r in read_jsonl(s["log"]) if r["type"] == "sample"}
    verdicts = {name: recs[rows[i]["task_id"]]["extracted"] for i, name in enumerate(names)}
    wrong = {name: verdicts[name] for name, (_, expected) in ATTACKS.items()
             if not (expected.match(verdicts[name]) if isinstance(expected, re.Pattern) else verdicts[name].startswith(expected))}
    assert wrong == {}
    assert {t: recs[t]["score"] for t in expect} == expect
    assert s["metrics"]["pass@1"]["value"] == pytest.approx(sum(expect.values()) / 164, abs=1e-6)
    assert "home" not in verdicts["/proc/1"] and "work" not in verdicts["/proc/1"]
    assert list(out.iterdir()) == [] and reached == []
    time.sleep(0.5)
    assert live_marked() == []
    stored = b"".join(p.read_bytes() for p in logs.rglob("*") if p.is_file())
    stored += b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    for secret in (key, other, "sk-proj-" + "Q" * 30, "hf_" + "Z" * 30):
        assert secret.encode() not in stored


def test_lone_surrogates_in_replies(evalkit, start_server, data_dir):
    rows = problems(data_dir)[:3]
    answers = [
        {"match": rows[0]["prompt"], "reply": "Here\ud800 it is:\n```python\n" + rows[0]["prompt"]
         + rows[0]["canonical_solution"] + "```\n\udfff"},
        {"match": rows[1]["prompt"], "reply": "```python\nS = '\udcff'\n" + rows[1]["prompt"] + rows[1]["canonical_solution"] + "```"},
        {"match": rows[2]["prompt"], "reply": "\ud83d" + rows[2]["canonical_solution"]},
    ]
    server = start_server(answers, default_reply="no code")
    res = evalkit("run", "humaneval", "--model", "openai/m", "--base-url", server.url, "--json")
    assert res.returncode == 0, res.stderr
    recs = {r["id"]: r for r in read_jsonl(json.loads(res.stdout)["log"]) if r["type"] == "sample"}
    assert recs["HumanEval/0"]["score"] == 1.0 and recs["HumanEval/0"]["completion"].startswith("Here\ud800")
    assert recs["HumanEval/1"]["score"] == 0.0 and "surrogates not allowed" in recs["HumanEval/1"]["extracted"]
    assert recs["HumanEval/2"]["score"] == 0.0


SHAPES = {
    # the body alone, in a fence or bare
    "body": lambda r, i: ("Here is the body:\n```python\n" + r["canonical_solution"] + "```") if i % 2
    else r["canonical_solution"],
    # the whole function as the prompt gives it, then the body (HumanEval/115 imports math inside it)
    "whole": lambda r, i: ("```python\n" + r["prompt"] + r["canonical_solution"] + "```") if i % 2
    else r["prompt"] + r["canonical_solution"],
    # with imports and helpers around it, text around the fence, and a __main__ block
    "helpers": lambda r, i: ("Sure! Let me write it.\n```python\nimport math\nimport re\nfrom typing import *\n\n"
                             "def _unused_helper(x):\n    return x\n\n" + r["prompt"] + r["canonical_solution"]
                             + "\n\nif __name__ == '__main__':\n    import doctest\n    doctest.testmod()\n```\n"
                             "It works because...\n```python\nprint(" + r["entry_point"] + ")\n```"),
}


def burners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True:\n    pass"]) for _ in range(n)]


@pytest.mark.parametrize("shape", list(SHAPES))
def test_canonical_solutions_pass_in_every_shape(evalkit, start_server, data_dir, shape):
    rows = problems(data_dir)
    server = start_server([{"match": r["prompt"], "reply": SHAPES[shape](r, i)} for i, r in enumerate(rows)])
    busy = burners(2) if shape == "whole" else []      # both cores busy: the time limits must still pass them
    try:
        res = evalkit("run", "humaneval", "--model", "openai/m", "--base-url", server.url, "--json")
    finally:
        for b in busy:
            b.kill()
            b.wait()
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    failed = [(r["id"], r["extracted"]) for r in read_jsonl(s["log"]) if r["type"] == "sample" and r["score"] != 1.0]
    assert failed == [] and s["metrics"]["pass@1"]["value"] == 1.0


def test_refuses_without_isolation_unless_unsafe_exec(evalkit, evalkit_process, start_server, data_dir, tmp_path):
    rows = problems(data_dir)
    steal = ("```python\nimport os\nfound, pid = [], os.getpid()\nfor _ in range(4):\n    try:\n"
             "        found += [v for v in open(f'/proc/{pid}/environ', 'rb').read().split(b'\\0') "
             "if v.startswith(b'OPENAI_API_KEY=')]\n    except OSError:\n        pass\n"
             "    pid = int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])\n"
             "raise RuntimeError(repr(found))\n```")      # evalkit is an ancestor of the program
    server = start_server([{"match": rows[0]["prompt"], "reply": steal}], default_reply="no code")
    no_bwrap = {"PATH": str(tmp_path / "empty-path")}
    res = evalkit("run", "humaneval", "--model", "openai/m", "--base-url", server.url, env=no_bwrap)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [
        "evalkit: error: code evals run model-written code and bubblewrap (bwrap) is not installed: install "
        "bubblewrap (apt-get install bubblewrap) or pass --unsafe-exec to run it without isolation (unsafe: it can "
        "read your files and keys)"]
    assert server.stats().get("requests", 0) == 0          # refused before asking the model anything

    key = "sk-" + secrets.token_hex(24)         # a real process: its /proc environ is what the program reads
    res = evalkit_process("run", "humaneval", "--model", "openai/m", "--base-url", server.url, "--json",
                          "--unsafe-exec", env={**no_bwrap, "OPENAI_API_KEY": key})
    assert res.returncode == 0, res.stderr
    assert "model-written code runs WITHOUT isolation" in res.stderr
    log = Path(json.loads(res.stdout)["log"])
    first = next(r for r in read_jsonl(log) if r.get("id") == "HumanEval/0")
    # Unisolated, the program can read evalkit's environment; the key is still never stored.
    assert first["score"] == 0.0 and first["extracted"].startswith("failed: RuntimeError: [b'OPENAI_API_KEY=[REDACTED]']")
    assert key.encode() not in log.read_bytes()


def _stat(pid: str) -> list[str] | None:
    """/proc/<pid>/stat from the state field on (state, ppid, ..., starttime at 19), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(roots: set[str]) -> dict[str, str]:
    """The live (not zombie) processes descending from `roots`, as pid -> start time: the process
    tree a test started, wherever in it a sandbox runs (a PID namespace's processes have host pids)."""
    stats = {pid: st for pid in filter(str.isdigit, os.listdir("/proc")) if (st := _stat(pid))}
    out, frontier = {}, set(roots)
    while frontier:
        frontier = {pid for pid, st in stats.items() if st[1] in frontier and pid not in out and st[0] != "Z"}
        out.update({pid: stats[pid][19] for pid in frontier})
    return out


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def test_kill_9_of_evalkit_leaves_no_sandbox_behind(start_server, data_dir, tmp_path):
    """Only what this test started is looked at: the evalkit process's tree, taken just before the
    kill (and whatever those processes start after it), and its own temporary folder."""
    rows = problems(data_dir)
    sleeper = f"```python\nimport os, time\nos.system('sleep {MARK} &')\ntime.sleep(600)\n```"
    server = start_server([{"match": r["prompt"], "reply": sleeper} for r in rows])
    (tmp := tmp_path / "tmp").mkdir()      # TMPDIR: the only folders the sandbox makes on disk go here
    env = {**os.environ, "EVALKIT_DATA_DIR": str(data_dir), "EVALKIT_CACHE_DIR": str(tmp_path / "cache"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "OPENAI_API_KEY": "x", "TMPDIR": str(tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", "run", "humaneval", "--model", "openai/m",
                             "--base-url", server.url], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ours(needle: str) -> list[str]:
        return [pid for pid in descendants({str(proc.pid)}) if needle in _cmdline(pid)]

    try:
        deadline = time.monotonic() + 120
        while not ours(MARK) and time.monotonic() < deadline:          # a sandbox is running its program
            time.sleep(0.2)
        time.sleep(0.5)
        assert ours(MARK) and ours(DRIVER_STUB)
        tree = descendants({str(proc.pid)})
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def left() -> dict[str, str]:    # the tree's processes still alive (same pid, same start), and their children
        alive = {pid: start for pid, start in tree.items() if (st := _stat(pid)) and st[0] != "Z" and st[19] == start}
        return {**alive, **descendants(set(alive))}

    deadline = time.monotonic() + 10
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {pid: _cmdline(pid) for pid in left()} == {}   # no sleeper, no bwrap, no driver: nothing of its tree
    assert list(tmp.iterdir()) == []
