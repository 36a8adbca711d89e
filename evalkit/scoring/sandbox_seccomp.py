"""The sandbox's seccomp filter: the system calls model code is refused, as a BPF program from libseccomp.

`_seccomp` builds, once per run and for this machine's architecture, the filter bubblewrap installs
(`--seccomp`): EPERM for the kernel keyrings (`REFUSED`; `keyctl` only for joining a new session
keyring), memory no address-space limit counts (memfd, SysV shared memory and message queues),
`ptrace` and `process_vm_*`. `_libseccomp` loads the library through ctypes; `_export` reads the
program back through a pipe.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from evalkit.scoring.sandbox_limits import UNSAFE_HINT, SandboxUnavailable

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
