"""Running untrusted model-written Python under operating-system isolation, with an honest verdict.

The boundary is bubblewrap (`bwrap`), not Python: each program runs in new user, PID, network,
IPC, UTS, cgroup and mount namespaces, as an unprivileged user, with every capability dropped,
no new privileges, and no further user namespaces. Its file system is an empty read-only root
holding only /usr (with the /bin, /lib... links), the interpreter's prefix (read-only), a private
/proc of its own PID namespace (its /proc/keys and /proc/key-users unreadable: the keyrings'
listings are not namespaced), a minimal read-only /dev, and a writable /tmp that is a tmpfs of
bounded size: nothing of the host is writable and nothing of it lands on the host's disk. The
environment is empty and the only descriptors are the driver's pipes. `--die-with-parent` and a
new session tie everything to evalkit: when evalkit dies, even by `kill -9`, the sandbox's first
process is killed and the kernel kills the whole PID namespace with it.

When evalkit runs as root, bubblewrap is started as `nobody` (so the kernel's process limit
applies: it exempts root), through `nsenter` into a private mount namespace prepared once per
run in which the interpreter is reachable by `nobody` even when it lives under a private home
(e.g. /root/.pyenv): the folders that hide it are covered there, and only there, by a small tmpfs
holding just the path to it. The host's mounts are untouched.

A seccomp filter (bubblewrap's `--seccomp`, the BPF program made once per run by libseccomp for
this machine's architecture) refuses with EPERM the kernel keyrings (`add_key`, `request_key`,
`keyctl` but for joining a new anonymous session keyring, which the driver does first: the
keyrings are not namespaced and would hand the program the host's keys or carry a key from one
sample to the next), memory no address-space limit counts (`memfd_create`, `memfd_secret`, SysV
shared memory and message queues), and `ptrace` and `process_vm_*`.

Inside, `sandbox_driver.py` runs the program in one process and the test in another (the
checker), which calls the program's entry point with plain data and alone writes the verdict, on
a pipe of its own, with a nonce sent on its stdin (see that file for what this can and cannot
detect). Before the program runs, the driver writes a "started" line with the nonce: a run
without it is the sandbox's failure to start (status `error`, retried once here, then the
sample's error), whatever stderr says. The host bounds the wall-clock time (generously: CPU time
is the real budget), drains stderr to its end keeping a tail, and turns every outcome into a
`RunResult`: no verdict, a garbled verdict, any exit status or signal number is a failure with
its reason, never an exception. Anything stored from the child is redacted of key-like strings.

Memory: no cgroup (it needs root or a delegated hierarchy); each process's address space is
limited and the tasks of the sandbox's user are counted, so the bound that holds is
`memory_bound(limits)`: (tasks - 1) x the address-space limit (bubblewrap's own first process is
one task and holds a few MB), plus /tmp's size, plus what the kernel keeps for pipes and sockets.

Without bubblewrap (or where it cannot create namespaces) evalkit refuses to run model code
unless the user passes `--unsafe-exec`: then the same driver runs as a plain child process in a
temporary folder, with the same limits but no isolation at all.

This module chooses the launcher (bubblewrap's options, root's private mount namespace) and runs a
program (`run_python`); the limits and the result are in `sandbox_limits`, one run and its verdict
in `sandbox_run`, the seccomp filter in `sandbox_seccomp`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from evalkit.core.errors import warn
from evalkit.scoring.sandbox_limits import INSTALL_HINT, UNSAFE_HINT, Limits, RunResult, SandboxUnavailable
from evalkit.scoring.sandbox_run import _execute, _Launcher
from evalkit.scoring.sandbox_seccomp import _seccomp

_lock = threading.Lock()
_launchers: dict[tuple[bool, str | None], _Launcher] = {}
_mount_ns: int | None = None      # our descriptor of the private mount namespace (root only)


def require_isolation(unsafe_exec: bool = False) -> str:
    """Make sure model code can run: "bubblewrap", or "unsafe" with --unsafe-exec; else raise."""
    return _launcher(unsafe_exec).name


def run_python(program: str, test: str = "", limits: Limits = Limits(), unsafe_exec: bool = False,
               prelude: str | None = None, entry: str | None = None) -> RunResult:
    """Run `program`, then `test`, in the sandbox; passed only if both ran to the end. With `entry`,
    the test runs in a process of its own, after the trusted `prelude`, calling the program's `entry`
    with plain data (see sandbox_driver.py); status "error" means the sandbox never started."""
    launcher = _launcher(unsafe_exec)
    job = (program, test, prelude if entry else None, entry)
    result = _execute(launcher, job, limits)
    if result.status == "error":        # the sandbox itself did not start (a passing shortage): once more
        time.sleep(0.5)
        result = _execute(launcher, job, limits)
    return result


# ------------------------------------------------------------------ choosing the launcher
def _launcher(unsafe_exec: bool) -> _Launcher:
    """The launcher for this flag and the bwrap now on PATH (probed once per pair: a long-lived
    process whose PATH changes, such as a test run calling the CLI in-process, sees the change)."""
    bwrap = shutil.which("bwrap")
    with _lock:
        if (unsafe_exec, bwrap) in _launchers:
            return _launchers[unsafe_exec, bwrap]
        try:
            launcher = _bubblewrap(bwrap)
        except SandboxUnavailable:
            if not unsafe_exec:
                raise
            warn("--unsafe-exec: bubblewrap is not usable here; model-written code runs WITHOUT isolation")
            launcher = _Launcher("unsafe", (), _interpreter(), isolated=False)
        _launchers[unsafe_exec, bwrap] = launcher
        return launcher


def _interpreter() -> str:
    """The base interpreter (a virtualenv's site-packages are of no use to -I -S anyway)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _bubblewrap(bwrap: str | None) -> _Launcher:
    if bwrap is None:
        raise SandboxUnavailable("code evals run model-written code and bubblewrap (bwrap) is not installed: "
                                 + INSTALL_HINT)
    python = _interpreter()
    roots = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix, os.path.dirname(python))})
    roots = [r for r in roots if not any(r != o and r.startswith(o + "/") for o in roots)]
    options = _bwrap_options(bwrap, roots)
    prefix = tuple(_as_nobody(roots) + options) if os.geteuid() == 0 else tuple(options)
    program, keyctl = _seccomp()
    launcher = _Launcher("bubblewrap", prefix, python, isolated=True, seccomp=program, keyctl=keyctl)
    probe = _execute(launcher, ("pass", "", None, None), Limits())
    if not probe.passed:
        raise SandboxUnavailable(f"bubblewrap cannot start a sandbox here ({probe.status}: {probe.detail}); "
                                 "code evals run model-written code: fix that, or " + UNSAFE_HINT)
    return launcher


def _bwrap_options(bwrap: str, roots: list[str]) -> list[str]:
    """bwrap's options: namespaces, identity, and a file system of /usr, the interpreter, /proc, /dev."""
    options = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
               "--cap-drop", "ALL", "--clearenv", "--hostname", "sandbox"]
    for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = "/" + top
        if os.path.islink(path):
            options += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            options += ["--ro-bind", path, path]
    if os.path.isfile("/etc/ld.so.cache"):                    # the dynamic loader's index of /usr's libraries
        options += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for root in roots:
        if root != "/usr" and not root.startswith("/usr/"):
            options += ["--ro-bind", root, root]
    options += ["--proc", "/proc", "--ro-bind", "/dev/null", "/proc/keys", "--ro-bind", "/dev/null", "/proc/key-users",
                "--dir", "/dev"]          # the keyrings' listings are not namespaced: other sandboxes' would show
    for device in ("null", "zero", "random", "urandom"):
        options += ["--dev-bind", f"/dev/{device}", f"/dev/{device}"]
    for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("shm", "/tmp")):   # POSIX semaphores live in /tmp's budget
        options += ["--symlink", target, f"/dev/{link}"]
    return options


# ------------------------------------------------------------------ root: run bubblewrap as nobody
HOLDER = r'''
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def call(result, what):
    if result != 0:
        raise SystemExit(f"{what}: {os.strerror(ctypes.get_errno())}")
call(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
call(libc.mount(None, b"/", None, 0x4000 | 0x40000, None), "making the mounts private")   # MS_REC|MS_PRIVATE
pairs = list(zip(sys.argv[1::2], sys.argv[2::2]))          # (folder to cover, path to show)
fds = [os.open(path, os.O_PATH | os.O_DIRECTORY) for _, path in pairs]
for cover in sorted({c for c, _ in pairs}):
    call(libc.mount(b"evalkit", cover.encode(), b"tmpfs", 2 | 4, b"mode=755,size=64k"), f"covering {cover}")
for (_, path), fd in zip(pairs, fds):
    os.makedirs(path, exist_ok=True)
    call(libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, 4096 | 16384, None), f"binding {path}")
print("ready", flush=True)
sys.stdin.read()
'''


def _hidden_by(path: str) -> str | None:
    """The outermost folder on `path` that other users cannot search, if any."""
    current = "/"
    for part in Path(path).parts[1:]:
        current = os.path.join(current, part)
        if not os.stat(current).st_mode & 0o001:
            return current
    return None


def _as_nobody(roots: list[str]) -> list[str]:
    """nsenter into a private mount namespace where `nobody` reaches the interpreter, as nobody."""
    global _mount_ns
    nsenter = shutil.which("nsenter")
    if nsenter is None:
        raise SandboxUnavailable("running as root, evalkit starts bubblewrap as nobody through nsenter "
                                 "(util-linux), which is not installed; install it, or " + UNSAFE_HINT)
    try:
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
    except KeyError:
        uid = gid = 65534
    if _mount_ns is None:
        pairs = [arg for r in roots if (hidden := _hidden_by(r)) for arg in (hidden, r)]
        holder = subprocess.Popen([_interpreter(), "-I", "-S", "-c", HOLDER, *pairs], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={})
        assert holder.stdin is not None and holder.stdout is not None and holder.stderr is not None   # all PIPE
        ready = holder.stdout.readline()
        if ready != b"ready\n":
            holder.kill()
            reason = holder.communicate()[1].decode("utf-8", "replace").strip().splitlines()
            raise SandboxUnavailable("cannot prepare the sandbox's mount namespace"
                                     + (f" ({reason[-1]})" if reason else "") + ": " + UNSAFE_HINT)
        _mount_ns = os.open(f"/proc/{holder.pid}/ns/mnt", os.O_RDONLY)
        holder.stdin.close()
        holder.wait()
        holder.stdout.close()
        holder.stderr.close()
    return [nsenter, f"--mount=/proc/{os.getpid()}/fd/{_mount_ns}", f"--setuid={uid}", f"--setgid={gid}", "--"]


