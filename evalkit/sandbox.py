"""Running untrusted model-written Python, contained.

`run_python(program)` runs the program in a fresh Python process and reports whether it exited
cleanly. Containment is in layers, so that no single bypass harms the host or the run:

1. **Process.** `python -I -S` (isolated mode, no site-packages, no PYTHON* variables), its own
   session and process group, killed as a group when it ends or times out (so a grandchild it
   managed to start dies too); a wall-clock timeout; stdout discarded, stderr capped.
2. **Resource limits** (setrlimit): CPU seconds, address space (a 10 GB allocation fails with
   MemoryError), file size, open files, and number of processes.
3. **Identity and network.** When evalkit runs as root, the child first moves into a new, empty
   network namespace (no interface up), then drops to the unprivileged user `nobody` (so the
   process limit applies and the file system is read-only to it outside its folder) — but only
   if `nobody` can start this Python: an interpreter under a private home (e.g. /root/.pyenv)
   cannot, and then the child stays root, and layers 1, 2, 4 and 5 carry the containment.
4. **Environment.** A fresh temporary working directory (deleted afterwards) and an environment
   holding only PATH, HOME (that directory) and LANG.
5. **Audit hook** installed before the model's code runs (Python audit hooks cannot be removed):
   no sockets, no subprocesses, no fork/exec/spawn, no signals to other processes, no ctypes, no
   leaving the working directory; files may be written only inside it and read only inside it or
   from Python's own library.

What it does not do: it is not a VM or container. A determined attacker with a kernel exploit is
out of scope; the layers above are meant for code written by a model under evaluation.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNET = 0x40000000

GUARD = r'''
import sys as _sys
def _evalkit_guard():
    import os, os.path
    here = os.path.realpath(os.getcwd())
    lib_roots = tuple({os.path.realpath(p) for p in (_sys.prefix, _sys.base_prefix, _sys.exec_prefix,
                                                     os.path.dirname(os.__file__))})
    denied_events = {"socket.socket", "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
                     "socket.gethostbyname", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
                     "os.spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.chdir", "os.chroot",
                     "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "pty.spawn", "os.startfile", "webbrowser.open", "urllib.Request", "http.client.connect",
                     "ftplib.connect", "smtplib.connect", "poplib.connect", "imaplib.open", "telnetlib.Telnet.open",
                     "os.setuid", "os.setgid", "resource.setrlimit", "resource.prlimit", "sys.addaudithook"}
    denied_modules = {"ctypes", "_ctypes", "socket", "_socket", "subprocess", "_posixsubprocess", "multiprocessing",
                      "pty", "asyncio", "ssl", "_ssl", "select", "selectors", "mmap", "signal", "_signal", "resource"}
    path_events = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod",
                   "os.chown", "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move"}
    listing_events = {"os.listdir", "os.scandir"}   # reads: the import system lists package folders
    inside = lambda p: p == here or p.startswith(here + os.sep)
    def hook(event, args):
        if event in denied_events:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and args and isinstance(args[0], str) and args[0].split(".")[0] in denied_modules:
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event == "open" and args and isinstance(args[0], (str, bytes)):
            path = os.path.realpath(os.fsdecode(args[0]))
            mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            writing = any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC)
            if writing and not inside(path):
                raise PermissionError(f"sandbox: writing {path} is not allowed")
            if not writing and not inside(path) and not path.startswith(lib_roots) and path not in ("/dev/null", "/dev/urandom"):
                raise PermissionError(f"sandbox: reading {path} is not allowed")
        if event in listing_events and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.path.realpath(os.fsdecode(args[0]))
            if not inside(path) and not path.startswith(lib_roots):
                raise PermissionError(f"sandbox: listing {path} is not allowed")
        if event in path_events and args and isinstance(args[0], (str, bytes, os.PathLike)):
            for a in args[:2]:
                if isinstance(a, (str, bytes, os.PathLike)) and not inside(os.path.realpath(os.fsdecode(a))):
                    raise PermissionError(f"sandbox: {event} outside the working directory is not allowed")
    _sys.addaudithook(hook)
_evalkit_guard()
del _evalkit_guard
'''


@dataclass(frozen=True)
class RunResult:
    passed: bool
    status: str            # passed | failed | timeout | killed
    detail: str = ""       # the last line of stderr, or what stopped it


@dataclass(frozen=True)
class Limits:
    timeout: float = 10.0        # wall-clock seconds
    cpu_seconds: int = 10
    memory_mb: int = 1024        # address space
    file_mb: int = 16
    open_files: int = 64
    processes: int = 16          # for the unprivileged user as a whole (only enforced when not root)


def _world_reachable(path: str) -> bool:
    """Can any user run this interpreter (every folder on its real path searchable by others)?"""
    real = Path(os.path.realpath(path))
    return all(os.stat(p).st_mode & 0o001 for p in real.parents) and bool(os.stat(real).st_mode & 0o001)


def _nobody() -> tuple[int, int] | None:
    """Whom to run as: `nobody` when we are root and `nobody` can start this Python, else ourselves."""
    if os.geteuid() != 0 or not _world_reachable(sys.executable):
        return None
    try:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        return 65534, 65534


def _preexec(limits: Limits, drop: tuple[int, int] | None):
    def setup() -> None:
        if drop is not None:
            try:  # a private, empty network namespace: no interface but a downed loopback
                ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)
            except Exception:
                pass
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
        mem = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        fsize = limits.file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if drop is not None:
            os.setgroups([])
            os.setgid(drop[1])
            os.setuid(drop[0])
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    return setup


def run_python(program: str, limits: Limits = Limits()) -> RunResult:
    drop = _nobody()
    with tempfile.TemporaryDirectory(prefix="evalkit-sandbox-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        (work / "main.py").write_text(GUARD + "\n" + program, encoding="utf-8")
        err_path = Path(tmp) / "stderr"
        if drop is not None:
            os.chmod(tmp, 0o755)
            os.chown(work, *drop)
            os.chown(work / "main.py", *drop)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8"}
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-I", "-S", "main.py"], cwd=work, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    start_new_session=True, preexec_fn=_preexec(limits, drop), close_fds=True)
            status = None
            try:
                code = proc.wait(timeout=limits.timeout)
            except subprocess.TimeoutExpired:
                status, code = "timeout", None
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)   # the whole group: grandchildren too
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
        tail = err_path.read_bytes()[-2000:].decode("utf-8", "replace").strip().splitlines()
        detail = tail[-1] if tail else ""
        if status == "timeout":
            return RunResult(False, "timeout", f"still running after {limits.timeout:g}s")
        if code == 0:
            return RunResult(True, "passed", detail)
        if code is not None and code < 0:
            return RunResult(False, "killed", f"killed by signal {-code} ({signal.Signals(-code).name})" + (f": {detail}" if detail else ""))
        return RunResult(False, "failed", detail)
