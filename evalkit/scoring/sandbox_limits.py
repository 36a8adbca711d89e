"""What a sandboxed run of model-written code may use, what it gives back, and why it cannot run.

`Limits` bounds each run (CPU and wall-clock seconds, address space, file and /tmp sizes, open
files, tasks, stderr kept) and `memory_bound` says how much host memory those limits let a sandbox
hold; `RunResult` is the verdict (passed or not, a status, the reason); `SandboxUnavailable` is the
one-line refusal when no isolation can run model code here (`UNSAFE_HINT`, `INSTALL_HINT`).
"""

from __future__ import annotations

from dataclasses import dataclass

from evalkit.core.errors import EvalkitError

UNSAFE_HINT = "pass --unsafe-exec to run it without isolation (unsafe: it can read your files and keys)"


INSTALL_HINT = "install bubblewrap (apt-get install bubblewrap) or " + UNSAFE_HINT


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
