"""The driver evalkit runs inside the sandbox: the model's program in one process, the test in another.

evalkit compiles it (it is never imported on the host), starts `python -I -S -B -c <a stub>
<verdict fd>`, and writes on its stdin this code object (which the stub runs) and then the
payload: marshal of (nonce, limits, program, test, prelude, entry). The driver:

1. forks the program's process *before* it reads the payload, so the nonce never exists in that
   process's memory, which keeps only its stdout, stderr and two pipes to the checker (stdin is
   /dev/null); the checker, the first process, makes itself non-dumpable (so the program cannot
   ptrace it, read its /proc/<pid>/mem, environ or fds), reads the payload and writes
   `EVALKIT-STARTED <nonce>` on the verdict pipe: evalkit counts a run without that line as the
   sandbox's failure to start, never as the program's;
2. both apply the resource limits (CPU seconds, address space, file size, open files, tasks, no
   core files); the program runs in fresh globals of a module named `solution` (not `__main__`,
   as in the reference harness);
3. with an entry point (`entry`): the checker runs the trusted `prelude` (the prompt, whose
   helpers the test may call) and the test in globals of its own, where `entry` is a proxy. Each
   call crosses to the program's process as marshal data and its result comes back as marshal
   data, decoded into exact built-in values (no code objects): what the test compares is plain
   data, never an object the program made. An exception in the call comes back as its type's
   name and a description; a result that is not plain data fails the sample. Arguments that are
   not plain data (a test passing a function) cannot cross: then the test runs in the program's
   process instead, as without an entry point, and a pass is marked "in-process";
4. without an entry point (or after that fallback) the program's process runs the test in its
   own globals and says how it went; that verdict is only as good as an in-process test;
5. the checker alone writes the record `EVALKIT-VERDICT <nonce>\\n<status>\\n<detail>` and leaves
   with os._exit. Every record is built from exact `str` values (`type(x) is str`): names,
   messages and file names that are not are replaced, so str subclasses, metaclass `__name__`
   properties or lying `__str__` methods cannot write it. When the program's process dies, the
   checker reports how (`exited`, `killed`, `timeout` for SIGXCPU).

What this does not defeat: a program that answers every call correctly by other means than the
task asks (a table of the public tests' answers), and, in the in-process fallback, everything an
in-process test cannot see. The sandbox around both processes, not this file, protects the host.
"""

import marshal
import os
import sys

_str, _type, _len, _Base = str, type, len, BaseException
_NAME = type.__dict__["__name__"].__get__          # the class's own name, past any metaclass property
_TB = BaseException.__dict__["__traceback__"].__get__       # the same descriptors, read from the class dict
_ERRNO = OSError.__dict__["errno"].__get__
_PLAIN = (type(None), bool, int, float, complex, str, bytes, tuple, list, dict, set, frozenset)
_CAP = 64 << 20                                     # bytes of one message between the two processes


def _limits(cpu, memory, fsize, nofile, nproc):
    import resource as r

    for kind, soft, hard in ((r.RLIMIT_CPU, cpu, cpu + 1), (r.RLIMIT_AS, memory, memory),
                             (r.RLIMIT_FSIZE, fsize, fsize), (r.RLIMIT_NOFILE, nofile, nofile),
                             (r.RLIMIT_NPROC, nproc, nproc), (r.RLIMIT_CORE, 0, 0)):
        r.setrlimit(kind, (soft, hard))


def _text(x, default):
    return x if _type(x) is _str else default


def _where(exc, stage):
    """'solution line N' or 'test line N' from the last such frame of the traceback, else `stage`."""
    where = stage
    tb = _TB(exc)
    while tb is not None:
        name = _text(tb.tb_frame.f_code.co_filename, "")
        if name == "solution.py" or name == "test.py":
            where = name[:-3] + " line " + _str(tb.tb_lineno)
            if stage != "solution" and name == "solution.py":
                where = where + ", during the test"      # the model's code, called by the test
        tb = tb.tb_next
    return where


def _describe(exc, stage):
    """(status, detail) for an exception, from exact strings only: type, message, where, if a limit."""
    cls = _type(exc)
    name = _text(_NAME(cls), "<unnamed exception>")
    try:
        message = _text(_str(exc), "<message is not a str>")
    except _Base:
        message = "<message could not be printed>"
    try:
        where = _where(exc, stage)
    except _Base:
        where = stage
    errno = _ERRNO(exc) if issubclass(cls, OSError) else None
    limit = (issubclass(cls, MemoryError) or (_type(errno) is int and errno in (11, 24, 27, 28))
             or (issubclass(cls, RuntimeError) and "can't start new thread" in message))
    text = name + (": " + message if message else "")
    if _len(text) > 400:
        text = text[:400] + "..."
    return ("limit" if limit else "failed"), text.replace("\n", " ") + " (" + where + ")"


def _send(fd, value, _dumps=marshal.dumps, _write=os.write):
    data = _dumps(value)
    data = _len(data).to_bytes(4, "big") + data
    while data:
        data = data[_write(fd, data):]


def _recv(fd, _read=os.read, _loads=marshal.loads):
    """The next message, or None at the end of the pipe (or on a garbled or oversized one)."""
    def exactly(n):
        b = bytearray()
        while _len(b) < n:
            c = _read(fd, min(n - _len(b), 1 << 20))
            if not c:
                return None
            b += c
        return bytes(b)
    head = exactly(4)
    size = int.from_bytes(head, "big") if head else _CAP + 1
    body = exactly(size) if size <= _CAP else None
    try:
        return None if body is None else _loads(body)
    except _Base:
        return None


def _plain(value):
    """Whether `value` is built of exact plain types only (what marshal gave back, minus code)."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = _type(v)
        if t not in _PLAIN:
            return False
        if t is dict:
            stack.extend(v.keys())
            stack.extend(v.values())
        elif t in (tuple, list, set, frozenset):
            stack.extend(v)
    return True


# ------------------------------------------------------------------ the program's process
def _program(down, up):
    """Run the program, then answer the checker: calls of the entry point, or the whole test."""
    send, recv, exit_, getpid, run, build, Base = _send, _recv, os._exit, os.getpid, exec, compile, _Base
    describe, dumps, gettrace, getprofile = _describe, marshal.dumps, sys.gettrace, sys.getprofile
    limits, program, entry = recv(down)
    _limits(*limits)
    me = getpid()
    module = type(sys)("solution")
    sys.modules["solution"] = module
    namespace = module.__dict__
    namespace["__builtins__"] = __builtins__
    sys.argv = ["solution.py"]
    try:
        run(build(program, "solution.py", "exec"), namespace)
        reply = ("ran",)
    except Base as exc:
        reply = ("raised",) + describe(exc, "solution") + ("",)
    while reply is not None and getpid() == me:        # a copy made by the program's fork never answers
        try:
            send(up, reply)
        except Base:
            exit_(0)
        ask = recv(down)
        if ask is None or getpid() != me:
            exit_(0)
        try:
            if ask[0] == "call":
                value = namespace[entry](*ask[1], **ask[2])
                try:
                    reply = ("value", dumps(value))
                except Base:
                    reply = ("not plain", _text(_NAME(type(value)), "?"))
            else:
                run(build(ask[1], "test.py", "exec"), namespace)
                clean = gettrace() is None and getprofile() is None
                reply = ("passed",) if clean else ("raised", "failed", "the program left a trace or profile "
                                                    "function set", "")
        except Base as exc:
            reply = ("raised",) + describe(exc, "call" if ask[0] == "call" else "test") + (_text(_NAME(type(exc)), ""),)
    exit_(0)


# ------------------------------------------------------------------ the checker's process
class _Fallback(BaseException):
    """The test passed the candidate something that is not plain data: run it in-process."""


class _Gone(BaseException):
    """The program's process stopped answering."""


def _raised(reply):
    """(status, detail) from the program's own description of its exception, as exact strings."""
    status = reply[1] if _len(reply) == 4 and reply[1] in ("failed", "limit") else "failed"
    detail = _text(reply[2], "an exception it did not describe") if _len(reply) == 4 else "a garbled reply"
    return status, detail.replace("\n", " ")[:500]


def _proxy(down, up, pending):
    """The candidate as the test sees it: plain data to the program's process and back."""
    import builtins

    def candidate(*args, **kwargs):
        pending.clear()                    # what an earlier call raised (and the test caught) is over
        try:
            _send(down, ("call", args, kwargs))
        except ValueError:
            raise _Fallback() from None
        reply = _recv(up)
        if _type(reply) is not tuple or not reply:
            raise _Gone()
        if reply[0] == "value" and _type(reply[1]) is bytes:
            try:
                value = marshal.loads(reply[1])
            except _Base:
                raise _Gone() from None
            if _plain(value):
                return value
            reply = ("not plain", "code")
        if reply[0] == "not plain":
            pending[:] = ["failed", "the entry point returned a value of type " + _text(reply[1], "?") + ", not plain data"
                          " (solution, during the test)"]
            raise _Gone()
        if reply[0] != "raised":
            raise _Gone()
        pending[:] = _raised(reply)
        kind = getattr(builtins, _text(reply[-1], ""), None) if _len(reply) == 4 else None
        try:
            exc = kind() if _type(kind) is type and issubclass(kind, Exception) else RuntimeError()
        except _Base:
            exc = RuntimeError()
        pending.append(exc)
        raise exc
    return candidate


def _ended(child, cpu):
    """(status, detail) for the program's process once it stopped answering."""
    import signal
    import time

    for _ in range(200):
        pid, code = os.waitpid(child, os.WNOHANG)
        if pid:
            break
        time.sleep(0.01)
    else:
        os.kill(child, signal.SIGKILL)
        return "failed", "the program broke the test's channel"
    if os.WIFEXITED(code):
        return "exited", "status " + _str(os.WEXITSTATUS(code)) + " before the test finished"
    signo = os.WTERMSIG(code)
    if signo == signal.SIGXCPU:
        return "timeout", "CPU time limit of " + _str(cpu) + " s (signal " + _str(signo) + ", SIGXCPU)"
    try:
        name = signal.Signals(signo).name
    except ValueError:
        name = "SIGRTMIN+" + _str(signo - signal.SIGRTMIN) if signal.SIGRTMIN <= signo else "unknown signal"
    return "killed", "signal " + _str(signo) + " (" + name + ") before the test finished"


def _in_process(down, up, test, child, cpu):
    _send(down, ("test", test))
    reply = _recv(up)
    if _type(reply) is not tuple or not reply:
        return _ended(child, cpu)
    return ("passed", "in-process") if reply[0] == "passed" else _raised(reply)


def _check(down, up, child, payload):
    """Run the test against the program's process; (status, detail), decided here alone."""
    limits, program, test, prelude, entry = payload
    _send(down, (limits, program, entry))
    _limits(*limits)
    first = _recv(up)
    if _type(first) is not tuple or not first:
        return _ended(child, limits[0])
    if first[0] != "ran":
        return _raised(first)
    if entry is None:
        return _in_process(down, up, test, child, limits[0])
    namespace, pending = {"__name__": "check"}, []
    try:
        exec(compile(prelude, "prompt.py", "exec"), namespace)
        namespace[entry] = _proxy(down, up, pending)
        exec(compile(test, "test.py", "exec"), namespace)
        return "passed", ""
    except _Fallback:
        return _in_process(down, up, test, child, limits[0])
    except _Gone:
        return (pending[0], pending[1]) if pending else _ended(child, limits[0])
    except _Base as exc:
        if pending and pending[-1] is exc:
            return pending[0], pending[1]
        return _describe(exc, "test")


def _sealed(keyctl):
    """A new, empty session keyring for both processes; the checker becomes non-dumpable after the fork."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if keyctl and libc.syscall(keyctl, 1, None) < 0:          # KEYCTL_JOIN_SESSION_KEYRING, anonymous
        raise SystemExit("evalkit driver: no new session keyring: " + os.strerror(ctypes.get_errno()))
    return lambda: libc.prctl(4, 0, 0, 0, 0)                  # PR_SET_DUMPABLE 0


def _close_all_but(*keep):
    """Close every descriptor above 2 but `keep`."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def _read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _main():
    fd, keyctl = int(sys.argv[1]), int(sys.argv[2])
    undumpable = _sealed(keyctl)
    down_r, down_w = os.pipe()
    up_r, up_w = os.pipe()
    os.environ.clear()
    child = os.fork()
    if child == 0:
        os.dup2(os.open("/dev/null", os.O_RDWR), 0)
        _close_all_but(down_r, up_w)
        _program(down_r, up_w)
    undumpable()
    _close_all_but(fd, down_w, up_r)
    nonce, *payload = marshal.loads(_read_all(0))
    header = ("EVALKIT-VERDICT " + nonce + "\n").encode()
    os.write(fd, ("EVALKIT-STARTED " + nonce + "\n").encode())
    del nonce
    try:
        status, detail = _check(down_w, up_r, child, payload)
    except _Base as exc:
        status, detail = "failed", "the checker failed: " + _text(_NAME(type(exc)), "?")
    os.write(fd, header + (status + "\n" + detail).encode("utf-8", "replace"))
    os._exit(0)


_main()
