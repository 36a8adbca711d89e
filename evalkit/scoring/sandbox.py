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
"""

from __future__ import annotations

import ctypes
import ctypes.util
import marshal
import os
import pwd
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from evalkit.core.errors import EvalkitError, warn
from evalkit.core.redact import redact

UNSAFE_HINT = "pass --unsafe-exec to run it without isolation (unsafe: it can read your files and keys)"
INSTALL_HINT = "install bubblewrap (apt-get install bubblewrap) or " + UNSAFE_HINT
VERDICT = b"EVALKIT-VERDICT "
STARTED = b"EVALKIT-STARTED "
VERDICT_CAP = 1 << 16
EXIT_GRACE = 2.0                   # seconds a sandbox may take to end after its verdict


class SandboxUnavailable(EvalkitError):
    """No isolation can run model code here (and --unsafe-exec was not given)."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 10          # CPU time of each process (SIGXCPU, then SIGKILL a second later)
    wall_seconds: float = 30.0     # wall clock for the whole run: generous, so a loaded machine passes
    memory_mb: int = 512           # address space of each process
    file_mb: int = 16              # largest file a process may write
    disk_mb: int = 64              # size of the writable /tmp
    open_files: int = 64
    processes: int = 12            # tasks (processes and threads) of the sandbox's user, bwrap's own included
    stderr_kb: int = 4             # tail of stderr kept for the reason of a crash


def memory_bound(limits: Limits = Limits()) -> int:
    """Bytes of host memory a sandbox can hold at most, kernel buffers for pipes and sockets aside."""
    return (limits.processes - 1) * (limits.memory_mb << 20) + (limits.disk_mb << 20)


@dataclass(frozen=True)
class RunResult:
    passed: bool
    status: str            # passed | failed | limit | exited | killed | timeout | error
    detail: str = ""       # why it failed: exception and line, exit status, signal, limit


@dataclass(frozen=True)
class _Launcher:
    name: str                     # "bubblewrap" or "unsafe"
    prefix: tuple[str, ...]       # nsenter (as root) and bwrap's options, up to the interpreter
    python: str
    isolated: bool
    seccomp: bytes = b""          # the BPF program bwrap installs (--seccomp)
    keyctl: int = 0               # keyctl's system-call number, for the driver's new session keyring


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


# ------------------------------------------------------------------ the seccomp filter
# Refused with EPERM: the kernel keyrings (not namespaced: they hold the host's secrets and would
# carry a key from one sample to the next), and memory that no address-space limit counts (memfd,
# SysV shared memory and message queues); ptrace and process_vm_* as well, so nothing reads the
# checker. keyctl is allowed for one thing only: joining a new anonymous session keyring.
REFUSED = ("add_key", "request_key", "memfd_create", "memfd_secret", "shmget", "shmat", "shmctl", "msgget",
           "msgsnd", "msgctl", "ptrace", "process_vm_readv", "process_vm_writev")
_ALLOW, _EPERM = 0x7FFF0000, 0x00050000 | 1          # SCMP_ACT_ALLOW, SCMP_ACT_ERRNO(EPERM)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]


def _libseccomp() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
    except OSError:
        raise SandboxUnavailable("the sandbox's seccomp filter needs libseccomp (apt-get install libseccomp2), "
                                 "which is not installed: install it, or " + UNSAFE_HINT) from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    return lib


def _seccomp() -> tuple[bytes, int]:
    """(BPF program, keyctl's number), made by libseccomp for this machine's architecture (other
    architectures' system calls kill the caller: libseccomp's default for a foreign ABI)."""
    lib = _libseccomp()
    ctx = lib.seccomp_init(_ALLOW)
    try:
        rules: list[tuple[str, tuple[tuple[int, int, int, int], ...]]] = [(name, ()) for name in REFUSED]
        rules += [("keyctl", ((0, 1, 1, 0),)), ("keyctl", ((0, 4, 1, 0), (1, 1, 0, 0)))]   # op != JOIN; name != NULL
        for name, cmps in rules:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                continue                      # not a system call on this architecture
            args = (_ArgCmp * max(1, len(cmps)))(*(_ArgCmp(*c) for c in cmps))
            if lib.seccomp_rule_add_array(ctx, _EPERM, number, len(cmps), args) != 0:
                raise SandboxUnavailable(f"libseccomp refused the rule for {name}: " + UNSAFE_HINT)
        program = _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)
    return program, max(0, lib.seccomp_syscall_resolve_name(b"keyctl"))


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    """The filter as BPF, through a pipe (a few hundred bytes: it fits the pipe's buffer)."""
    read_end, write_end = os.pipe()
    try:
        if lib.seccomp_export_bpf(ctx, write_end) != 0:
            raise SandboxUnavailable("libseccomp could not export the filter: " + UNSAFE_HINT)
        os.close(write_end)
        write_end = -1
        return os.read(read_end, 1 << 16)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


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


# ------------------------------------------------------------------ one run
# The driver is compiled once here and sent as a code object ahead of its payload (the same
# interpreter runs it), so the sandbox's Python starts with this stub instead of compiling it.
BOOTSTRAP = ("import os,marshal\n"
             "def r(n,b=b''):\n"
             " while len(b)<n:\n"
             "  c=os.read(0,n-len(b))\n"
             "  if not c:os._exit(3)\n"
             "  b+=c\n"
             " return b\n"
             "exec(marshal.loads(r(int.from_bytes(r(4),'big'))))\n")
_DRIVER: bytes | None = None


def _driver() -> bytes:
    """The driver's code, length-prefixed: nothing of evalkit's is bound into the sandbox."""
    global _DRIVER
    if _DRIVER is None:
        path = Path(__file__).with_name("sandbox_driver.py")
        code = marshal.dumps(compile(path.read_text(encoding="utf-8"), str(path.name), "exec"))
        _DRIVER = len(code).to_bytes(4, "big") + code
    return _DRIVER


def _command(launcher: _Launcher, limits: Limits, verdict_fd: int, seccomp_fd: int | None) -> list[str]:
    tail = [launcher.python, "-I", "-S", "-B", "-c", BOOTSTRAP, str(verdict_fd), str(launcher.keyctl)]
    if not launcher.isolated:
        return tail
    return [*launcher.prefix, "--seccomp", str(seccomp_fd), "--size", str(limits.disk_mb << 20), "--tmpfs", "/tmp",
            "--remount-ro", "/", "--chdir", "/tmp", "--", *tail]


def _filter_fd(launcher: _Launcher) -> int | None:
    """A pipe holding the seccomp program, for bwrap to read (small: it fits the pipe's buffer)."""
    if not launcher.isolated:
        return None
    read_end, write_end = os.pipe()
    os.write(write_end, launcher.seccomp)
    os.close(write_end)
    return read_end


def _execute(launcher: _Launcher, job: tuple, limits: Limits) -> RunResult:
    nonce = secrets.token_hex(16)
    payload = _driver() + marshal.dumps((nonce, (limits.cpu_seconds, limits.memory_mb << 20, limits.file_mb << 20,
                                                 limits.open_files, limits.processes), *job))
    folder = None if launcher.isolated else tempfile.mkdtemp(prefix="evalkit-unsafe-")
    read_end, write_end = os.pipe()
    seccomp_fd = _filter_fd(launcher)
    passed = (write_end,) if seccomp_fd is None else (write_end, seccomp_fd)
    try:
        try:
            proc = subprocess.Popen(_command(launcher, limits, write_end, seccomp_fd), stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=passed,
                                    env={}, cwd=folder, start_new_session=True)
        except OSError as exc:
            os.close(read_end)
            return RunResult(False, "error", f"the sandbox did not start: {exc}")
        finally:
            for fd in passed:
                os.close(fd)
        try:
            verdict, stderr, timed_out = _exchange(proc, payload, read_end, limits)
        finally:
            _end(proc)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return _judge(verdict, nonce, stderr, proc.returncode, timed_out, limits)


def _end(proc: subprocess.Popen) -> None:
    """Kill what is left of the run (the sandbox dies with its bwrap) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    for pipe in (proc.stdin, proc.stderr):
        if pipe is not None and not pipe.closed:
            pipe.close()


def _exchange(proc: subprocess.Popen, payload: bytes, verdict_fd: int, limits: Limits) -> tuple[bytes, bytes, bool]:
    """Send the payload, collect the verdict and stderr's tail; (verdict, stderr, timed out)."""
    deadline = time.monotonic() + limits.wall_seconds
    assert proc.stdin is not None and proc.stderr is not None      # opened as pipes by _execute
    keep, stdin, stderr_fd = limits.stderr_kb << 10, proc.stdin.fileno(), proc.stderr.fileno()
    sel = selectors.DefaultSelector()
    os.set_blocking(stdin, False)
    sel.register(stdin, selectors.EVENT_WRITE)
    sel.register(stderr_fd, selectors.EVENT_READ)
    sel.register(verdict_fd, selectors.EVENT_READ)
    reading = {stderr_fd, verdict_fd}
    verdict, stderr, sent = bytearray(), bytearray(), 0
    try:
        while reading:
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(verdict), bytes(stderr), True
            for key, _ in sel.select(left):
                fd = key.fd
                if fd == stdin:
                    try:
                        sent += os.write(stdin, payload[sent:sent + (1 << 16)])
                    except BlockingIOError:
                        continue
                    except OSError:          # the sandbox is gone before it read everything
                        sent = len(payload)
                    if sent >= len(payload):
                        sel.unregister(stdin)
                        proc.stdin.close()
                    continue
                data = os.read(fd, 1 << 16)
                if fd == stderr_fd:            # drained to the end (a writer never gets EPIPE), tail kept
                    stderr = (stderr + data)[-keep:]
                    done = not data
                else:
                    verdict += data[:VERDICT_CAP + 1 - len(verdict)]
                    done = not data or len(verdict) > VERDICT_CAP
                    if verdict.count(b"\n") > 1:       # the verdict itself: the driver exits right after
                        deadline = min(deadline, time.monotonic() + EXIT_GRACE)
                if done:
                    sel.unregister(fd)
                    reading.discard(fd)
                    proc.stderr.close() if fd == stderr_fd else os.close(fd)
        return bytes(verdict), bytes(stderr), False
    finally:
        sel.close()
        if verdict_fd in reading:
            os.close(verdict_fd)


# ------------------------------------------------------------------ the verdict
_SECRET_NAMES = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def _known_secrets() -> tuple[str, ...]:
    """Values of this process's key-like environment variables: never stored, even if echoed."""
    return tuple(v for k, v in os.environ.items() if any(n in k.upper() for n in _SECRET_NAMES))


def _clean(text: str, limit: int = 300) -> str:
    text = redact(" ".join(text.split()), _known_secrets())
    return text if len(text) <= limit else text[:limit] + "..."


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return f"SIGRTMIN+{number - signal.SIGRTMIN}"
        return "unknown signal"


def _judge(verdict: bytes, nonce: str, stderr: bytes, code: int | None, timed_out: bool, limits: Limits) -> RunResult:
    started, header = STARTED + nonce.encode() + b"\n", VERDICT + nonce.encode() + b"\n"
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    last = f": {_clean(lines[-1], 200)}" if lines else ""
    if not verdict.startswith(started):     # the program never ran: whatever stderr says, not its fault
        return RunResult(False, "error", ("the sandbox did not start" if not timed_out else
                                          f"the sandbox did not start within {limits.wall_seconds:g} s") + last)
    verdict = verdict[len(started):]
    if verdict.startswith(header):
        status, _, detail = verdict[len(header):].decode("utf-8", "replace").partition("\n")
        if status == "passed" and detail in ("", "in-process"):
            return RunResult(True, "passed", detail)
        if status in ("failed", "limit", "timeout"):
            return RunResult(False, status, _clean(detail))
        if status in ("killed", "exited"):
            return RunResult(False, status, _clean(detail + last))
    if verdict:
        return RunResult(False, "failed", "the program wrote a false verdict")
    if timed_out:
        return RunResult(False, "timeout", f"still running after {limits.wall_seconds:g} s (wall clock)")
    signo = -code if code is not None and code < 0 else code - 128 if code is not None and 128 < code < 193 else None
    if signo == signal.SIGXCPU:
        return RunResult(False, "timeout", f"CPU time limit of {limits.cpu_seconds} s (signal {signo}, SIGXCPU)")
    if signo is not None:
        return RunResult(False, "killed", f"signal {signo} ({_signal_name(signo)}) before the test finished{last}")
    return RunResult(False, "exited", f"status {code} before the test finished{last}")
