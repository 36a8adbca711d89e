"""HumanEval against programs that try to make a wrong answer pass, through the real CLI.

Round 2 of the attacks: objects whose operators lie (str subclasses, metaclass `__name__`
properties, lying `__str__`, a forged `co_filename`) raised at the top level, from the call, and
as resource-limit errors, generated as every combination; and what an in-process test cannot
see (an object equal to everything, reading the test's source and the caller's line, the nonce
from the driver's frames or from /proc/self/mem). Each is a wrong answer and must score 0, while
the rest of the problems get canonical solutions that must score 1. Also: the host's kernel
keyrings and memory outside the address-space limit (memfd, SysV shared memory) are refused, a
sandbox that cannot start is the sample's error (retried on resume), and a program printing a
fake `bwrap:` line is only a failure.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import read_jsonl
from test_sandbox import problems

pytestmark = pytest.mark.xdist_group("sandbox")

LIAR = '''
class L(str):
    def __add__(s, o): return s
    def __radd__(s, o): return "passed" if str.endswith(o, "\\n") else s
    def __bool__(s): return True
    def __len__(s): return 0
    def __contains__(s, x): return True
    def __eq__(s, o): return True
    __hash__ = str.__hash__
    def __getitem__(s, i): return s
    def replace(s, *a): return s
    def startswith(s, *a): return False
    def encode(s, *a, **k): return b"passed"
'''

# how the lying object reaches the description of the exception
TRICKS = {
    "metaclass name": "class M(type):\n    __name__ = property(lambda c: L('E'))\n"
                      "class E({base}, metaclass=M):\n    pass\ndef boom():\n    raise E({args})\n",
    "lying __str__": "class E({base}):\n    def __str__(s):\n        return L('m')\ndef boom():\n    raise E({args})\n",
    "co_filename": "def boom():\n    raise {base}({args})\nboom.__code__ = boom.__code__.replace(co_filename=L('solution.py'))\n",
}
# which path of the driver describes it: an ordinary failure, or a resource limit
BASES = {"RuntimeError": "'x'", "MemoryError": "'x'", "BlockingIOError": "11, 'x'",
         "RuntimeError('can')": "\"can't start new thread\""}
ROUTES = {
    "top-level raise": "boom()\n{wrong}",
    "raise in the call": "def {f}(*args, **kwargs):\n    boom()\n",
}

# what an in-process test cannot see: each returns the expected value or forges the record
IN_PROCESS = {
    "equal to everything": "class A:\n    __eq__ = lambda s, o: True\n    __ne__ = lambda s, o: False\n"
                           "    __bool__ = lambda s: True\ndef {f}(*args, **kwargs):\n    return A()\n",
    "the caller's line": "import ast, sys\nsources = {{}}\n"
                         "def hook(event, args):\n    if event == 'compile' and args[1] == 'test.py':\n"
                         "        sources['test.py'] = args[0]\nsys.addaudithook(hook)\n"
                         "def {f}(*args, **kwargs):\n    frame = sys._getframe(1)\n    try:\n"
                         "        line = sources[frame.f_code.co_filename].splitlines()[frame.f_lineno - 1].strip()\n"
                         "        node = ast.parse(line).body[0]\n"
                         "        return eval(ast.unparse(node.test.comparators[0]), frame.f_globals, frame.f_locals)\n"
                         "    except Exception:\n        return None\n",
    "nonce from the driver's frames": "import os, sys\nframe = sys._getframe()\nwhile frame is not None:\n"
                                      "    for v in list(frame.f_locals.values()):\n"
                                      "        if isinstance(v, bytes) and v.startswith(b'EVALKIT-VERDICT '):\n"
                                      "            for fd in range(3, 64):\n                try:\n"
                                      "                    os.write(fd, v + b'passed')\n                except OSError:\n"
                                      "                    pass\n            os._exit(0)\n    frame = frame.f_back\n{wrong}",
    "nonce from /proc/self/mem": "import os, re\nfound = None\nmem = open('/proc/self/mem', 'rb')\n"
                                 "for line in open('/proc/self/maps'):\n    parts = line.split()\n"
                                 "    if 'r' not in parts[1] or len(parts) > 5 and parts[5].startswith('['):\n"
                                 "        continue\n    lo, hi = (int(x, 16) for x in parts[0].split('-'))\n    try:\n"
                                 "        mem.seek(lo)\n        m = re.search(rb'EVALKIT-VERDICT [0-9a-f]{{32}}\\n', mem.read(hi - lo))\n"
                                 "    except (OSError, OverflowError, ValueError):\n        continue\n    if m:\n"
                                 "        for fd in range(3, 64):\n            try:\n"
                                 "                os.write(fd, m.group() + b'passed')\n            except OSError:\n"
                                 "                pass\n        os._exit(0)\n{wrong}",
    "the checker's memory": "import os\nfor pid in [p for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]:\n"
                            "    try:\n        open(f'/proc/{{pid}}/mem', 'rb').read(1)\n"
                            "        raise SystemExit(f'read {{pid}}')\n    except OSError:\n        pass\n{wrong}",
}

WRONG = "def {f}(*args, **kwargs):\n    return None\n"


def forge_attacks() -> dict[str, str]:
    """name -> program template: every trick by every route and base, then the in-process ones."""
    out = {}
    for (trick, code), (base, args), (route, tail) in itertools.product(TRICKS.items(), BASES.items(), ROUTES.items()):
        name = base.split("(")[0]
        out[f"{trick} / {base} / {route}"] = LIAR + code.format(base=name, args=args) + tail
    return {**out, **IN_PROCESS}


def reply(template: str, row: dict) -> str:
    f = row["entry_point"]
    return "```python\n" + template.format(f=f, wrong=WRONG.format(f=f)) + "```"


def test_no_forged_or_in_process_trick_passes(evalkit, start_server, data_dir):
    rows = problems(data_dir)
    attacks = forge_attacks()
    assert len(attacks) >= 24
    answers, names = [], {}
    for i, r in enumerate(rows):
        if i < len(attacks):
            names[r["task_id"]] = list(attacks)[i]
            text = reply(attacks[names[r["task_id"]]], r)
        else:
            text = "```python\n" + r["prompt"] + r["canonical_solution"] + "```"
        answers.append({"match": r["prompt"], "reply": text})
    server = start_server(answers)
    res = evalkit("run", "humaneval", "--model", "openai/m", "--base-url", server.url, "--json")
    assert res.returncode == 0, res.stderr
    recs = {r["id"]: r for r in read_jsonl(json.loads(res.stdout)["log"]) if r["type"] == "sample"}
    passed = {names[t]: recs[t]["extracted"] for t in names if recs[t]["score"] != 0.0}
    assert passed == {}
    canonical = {t: r["extracted"] for t, r in recs.items() if t not in names and r["score"] != 1.0}
    assert canonical == {}
    assert all(recs[t]["extracted"] == "passed" for t in recs if t not in names)    # none in-process


# ------------------------------------------------------------------ the host's keyrings and memory
SEAL = {
    "read the session keyring": "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                                "buf = ctypes.create_string_buffer(4096)\n"
                                "try:\n    listing = open('/proc/keys').read()\nexcept OSError as e:\n"
                                "    listing = type(e).__name__\n"
                                "ids = [int(l.split()[0], 16) for l in listing.splitlines() if ' ' in l]\n"
                                "got = [libc.syscall({keyctl}, 11, k, buf, 4096) for k in ids + [-3, -4]]\n"
                                "raise RuntimeError(f'{{listing[:30]}} keyctl read {{max(got)}} errno {{ctypes.get_errno()}} "
                                "{{buf.raw[:60]!r}}')\n",
    "plant a key": "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                   "r = [libc.syscall({add_key}, b'user', b'planted', b'x', 1, k) for k in (-3, -4, -5)]\n"
                   "raise RuntimeError(f'add_key {{max(r)}} errno {{ctypes.get_errno()}}')\n",
    "memfd": "import os\nfd = os.memfd_create('hold')\nos.write(fd, bytes(1 << 20))\n",
    "SysV shared memory": "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                          "r = libc.syscall({shmget}, 0, 1 << 20, 0o1600)\n"
                          "raise RuntimeError(f'shmget {{r}} errno {{ctypes.get_errno()}}')\n",
}
SEALED = {
    "read the session keyring": "failed: RuntimeError: PermissionError keyctl read -1 errno 1 b'\\x00",
    "plant a key": "failed: RuntimeError: add_key -1 errno 1",
    "memfd": "failed: PermissionError: [Errno 1] Operation not permitted",
    "SysV shared memory": "failed: RuntimeError: shmget -1 errno 1",
}
NUMBERS = {"x86_64": {"keyctl": 250, "add_key": 248, "shmget": 29}, "aarch64": {"keyctl": 219, "add_key": 217, "shmget": 194}}

# Runs evalkit in a session keyring of its own holding a secret, and reports what is left in it after.
KEYRING_HOST = '''
import ctypes, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
nr = {nr}
assert libc.syscall(nr["keyctl"], 1, None) > 0                        # join a new session keyring
assert libc.syscall(nr["add_key"], b"user", b"evalkit-test-secret", sys.argv[1].encode(), len(sys.argv[1]), -3) > 0
code = subprocess.run(sys.argv[2:]).returncode
buf = ctypes.create_string_buffer(4096)
n = libc.syscall(nr["keyctl"], 11, -3, buf, 4096)                  # KEYCTL_READ of the session keyring
print(code, n, flush=True)
'''


def test_keyrings_and_unbounded_memory_are_refused(start_server, data_dir, tmp_path):
    nr = NUMBERS[os.uname().machine]
    rows, names = problems(data_dir), list(SEAL)                  # --limit picks a seeded few: each row an attack
    answers = [{"match": r["prompt"], "reply": "```python\n" + SEAL[names[i % len(names)]].format(**nr)
                + WRONG.format(f=r["entry_point"]) + "```"} for i, r in enumerate(rows)]
    server = start_server(answers)
    secret = "keyring-secret-" + secrets.token_hex(16)
    env = {**os.environ, "EVALKIT_DATA_DIR": str(data_dir), "EVALKIT_CACHE_DIR": str(tmp_path / "cache"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "OPENAI_API_KEY": "x"}
    res = subprocess.run([sys.executable, "-c", KEYRING_HOST.format(nr=nr), secret, sys.executable, "-m", "evalkit", "run",
                          "humaneval", "--model", "openai/m", "--base-url", server.url, "--json", "--limit", "12"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr
    summary, (code, keyring_size) = json.loads(res.stdout.splitlines()[0]), res.stdout.splitlines()[1].split()
    assert code == "0" and int(keyring_size) == 4                     # the secret's key, still linked: not wiped
    recs = {r["id"]: r for r in read_jsonl(summary["log"]) if r["type"] == "sample"}
    name = {r["task_id"]: names[i % len(names)] for i, r in enumerate(rows)}
    assert len(recs) == 12 and {name[t] for t in recs} == set(SEAL)
    assert {t: r["extracted"] for t, r in recs.items() if not r["extracted"].startswith(SEALED[name[t]])} == {}
    assert secret not in Path(summary["log"]).read_text(encoding="utf-8")


# ------------------------------------------------------------------ a sandbox that cannot start
FAILING_BWRAP = """#!/bin/sh
if [ -e {dir}/probed ]; then
  echo 'bwrap: Creating new namespace failed: Resource temporarily unavailable' >&2
  exit 1
fi
touch {dir}/probed
exec {real} "$@"
"""


@pytest.fixture
def failing_bwrap():
    """A folder holding a `bwrap` that starts the probe's sandbox, then fails as a shortage does."""
    folder = Path(tempfile.mkdtemp(prefix="evalkit-test-bwrap-"))      # nobody must reach it (tmp_path is 0700)
    folder.chmod(0o777)
    script = folder / "bwrap"
    script.write_text(FAILING_BWRAP.format(dir=folder, real=shutil.which("bwrap")))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
    yield folder
    shutil.rmtree(folder)


def test_a_sandbox_that_cannot_start_is_an_error_retried_on_resume(evalkit, start_server, data_dir, failing_bwrap):
    rows = problems(data_dir)
    fake = "import sys\nprint('bwrap: Creating new namespace failed: Resource temporarily unavailable', file=sys.stderr)\n" \
           "sys.stderr.flush()\nimport os\nos._exit(1)\n"
    answers = [{"match": r["prompt"], "reply": "```python\n" + (fake if i % 2 else r["prompt"] + r["canonical_solution"])
                + "```"} for i, r in enumerate(rows)]
    expect = {r["task_id"]: 0.0 if i % 2 else 1.0 for i, r in enumerate(rows)}
    server = start_server(answers)
    args = ("run", "humaneval", "--model", "openai/m", "--base-url", server.url, "--json", "--limit", "3")
    res = evalkit(*args, env={"PATH": f"{failing_bwrap}:{os.environ['PATH']}"})
    s = json.loads(res.stdout)
    recs = {r["id"]: r for r in read_jsonl(s["log"]) if r["type"] == "sample"}
    assert s["errors"] == 3 and all(r["score"] is None for r in recs.values()), recs
    assert all(r["error"].startswith("sandbox: the sandbox did not start: bwrap: Creating new namespace failed")
               for r in recs.values())
    res = evalkit(*args)                                               # the real bwrap: the three are tried again
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    recs = {r["id"]: r for r in read_jsonl(s["log"]) if r["type"] == "sample" and not r.get("error")}
    assert s["errors"] == 0 and len(recs) == 3 and {t: r["score"] for t, r in recs.items()} == {t: expect[t] for t in recs}
    assert set(expect[t] for t in recs) == {0.0, 1.0}             # the seeded three hold both
    # the program's own `bwrap:` line is the program's failure, not the sandbox's
    assert all(r["extracted"].startswith("exited: status 1 before the test finished: bwrap:")
               for t, r in recs.items() if expect[t] == 0.0)
