"""One run in the sandbox: the command, the exchange with the driver, and the honest verdict.

`_execute` starts the chosen `_Launcher`'s command (bubblewrap with its seccomp filter on a pipe, or
a plain child with `--unsafe-exec`), sends the driver's precompiled code (`BOOTSTRAP`, `_driver`)
and the job, and `_exchange` collects the verdict pipe and stderr's tail within the wall-clock
bound; `_end` kills and reaps what is left. `_judge` turns the nonce-checked verdict, exit status
or signal into a `RunResult`, redacting anything key-like the program wrote.
"""

from __future__ import annotations

import marshal
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from evalkit.core.redact import redact
from evalkit.scoring.sandbox_limits import Limits, RunResult

VERDICT = b"EVALKIT-VERDICT "


STARTED = b"EVALKIT-STARTED "


VERDICT_CAP = 1 << 16


EXIT_GRACE = 2.0                   # seconds a sandbox may take to end after its verdict


@dataclass(frozen=True)
class _Launcher:
    name: str                     # "bubblewrap" or "unsafe"
    prefix: tuple[str, ...]       # nsenter (as root) and bwrap's options, up to the interpreter
    python: str
    isolated: bool
    seccomp: bytes = b""          # the BPF program bwrap installs (--seccomp)
    keyctl: int = 0               # keyctl's system-call number, for the driver's new session keyring


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
