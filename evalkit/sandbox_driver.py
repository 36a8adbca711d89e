"""The driver evalkit runs inside the sandbox: the model's program, then the test, then a verdict.

evalkit compiles it (it is never imported on the host), starts `python -I -S -B -c <a stub>
<verdict fd>`, and writes on its stdin this code object (which the stub runs) and then the
payload: marshal of (nonce, limits, program, test). The driver:

1. reads the payload, puts /dev/null on stdin, closes every descriptor but 0, 1, 2 and the
   verdict pipe, empties the environment, and applies the resource limits to itself (children
   inherit them): CPU seconds, address space, file size, open files, tasks, no core files;
2. runs the program in fresh globals of a module named `solution` (not `__main__`, so
   `if __name__ == "__main__":` blocks do not run, as in the reference harness), then the test in
   the same globals; any BaseException (SystemExit included) is a failure, described by its type,
   message and the line of the program or test it came from;
3. passes only if the test returned normally with no trace or profile function left set, and
   writes exactly one record to the verdict pipe, `EVALKIT-VERDICT <nonce>\\n<status>\\n<detail>`,
   then leaves with os._exit (so atexit handlers and finalizers the program registered never
   run). A copy of the driver made by the program's os.fork() never reports.

Everything the driver calls after the program starts was bound to a local name before, so a
program that rebinds `os.write`, `os._exit` or a builtin cannot change the report. evalkit counts
a sample as passed only when this record, with the nonce it sent, is the only thing on the pipe:
an early exit, `os._exit(0)`, a signal, or text printed anywhere else is a failure. What an
in-process test cannot see: a program written against this driver or the test (reading the
nonce from the driver's memory, patching the builtins the test calls), or one returning an
object that equals everything. The sandbox around the process, not this file, protects the host.
"""

import marshal
import os
import sys


def _limits(cpu, memory, fsize, nofile, nproc):
    import resource as r

    for kind, soft, hard in ((r.RLIMIT_CPU, cpu, cpu + 1), (r.RLIMIT_AS, memory, memory),
                             (r.RLIMIT_FSIZE, fsize, fsize), (r.RLIMIT_NOFILE, nofile, nofile),
                             (r.RLIMIT_NPROC, nproc, nproc), (r.RLIMIT_CORE, 0, 0)):
        r.setrlimit(kind, (soft, hard))


def _describe(exc, stage, _type=type, _str=str, _isinstance=isinstance, _len=len, _getattr=getattr,
              _Base=BaseException, _OSError=OSError, _MemoryError=MemoryError, _RuntimeError=RuntimeError):
    """(status, detail) for an exception: its type and message, where it came from, if a limit."""
    name = _type(exc).__name__
    try:
        message = _str(exc)
    except _Base:
        message = "<message could not be printed>"
    if not _isinstance(message, _str):
        message = "<message could not be printed>"
    where = stage
    try:
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename in ("solution.py", "test.py"):
                where = tb.tb_frame.f_code.co_filename[:-3] + " line " + _str(tb.tb_lineno)
                if stage == "test" and where.startswith("solution"):
                    where += ", during the test"      # the model's code, called by the test
            tb = tb.tb_next
    except _Base:
        pass
    errno = _getattr(exc, "errno", None) if _isinstance(exc, _OSError) else None
    limit = (_isinstance(exc, _MemoryError) or errno in (11, 24, 27, 28)   # EAGAIN EMFILE EFBIG ENOSPC
             or (_isinstance(exc, _RuntimeError) and "can't start new thread" in message))
    text = name + (": " + message if message else "")
    if _len(text) > 400:
        text = text[:400] + "..."
    return ("limit" if limit else "failed"), text.replace("\n", " ") + " (" + where + ")"


def _main():
    fd = int(sys.argv[1])
    read, write, exit_, getpid = os.read, os.write, os._exit, os.getpid
    gettrace, getprofile, run, build, Base = sys.gettrace, sys.getprofile, exec, compile, BaseException
    chunks = []
    while True:
        chunk = read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    nonce, limits, program, test = marshal.loads(b"".join(chunks))
    del chunks
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.closerange(3, fd)
    os.closerange(fd + 1, 1 << 20)
    os.environ.clear()
    _limits(*limits)
    describe, header = _describe, ("EVALKIT-VERDICT " + nonce + "\n").encode()
    del nonce
    me = getpid()
    module = type(sys)("solution")
    sys.modules["solution"] = module
    namespace = module.__dict__
    namespace["__builtins__"] = __builtins__
    sys.argv = ["solution.py"]
    stage = "solution"
    try:
        run(build(program, "solution.py", "exec"), namespace)
        stage = "test"
        run(build(test, "test.py", "exec"), namespace)
        if gettrace() is None and getprofile() is None:
            status, detail = "passed", ""
        else:
            status, detail = "failed", "the program left a trace or profile function set"
    except Base as exc:   # SystemExit and KeyboardInterrupt are failures too
        try:
            status, detail = describe(exc, stage)
        except Base:
            status, detail = "failed", "an exception that could not be described (" + stage + ")"
    if getpid() == me:
        write(fd, header + (status + "\n" + detail).encode("utf-8", "replace"))
    exit_(0)


_main()
