#!/usr/bin/python3
"""Run a command with io_uring refused by the kernel, as on a host with kernel.io_uring_disabled or a container
runtime's seccomp profile: io_uring_setup, io_uring_enter and io_uring_register fail with EPERM.

Usage: no-io-uring.py COMMAND [ARG ...]   (exec's COMMAND: same PID, so it can be signalled by the PID started)
A seccomp filter (classic BPF, installed with prctl; plain ctypes, no libseccomp) is inherited across exec and by
every thread and child. Only the three syscalls are matched; their numbers are the same on every Linux
architecture (the generic table, 425..427).
"""
import ctypes, os, sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1
IO_URING_SETUP, IO_URING_REGISTER = 425, 427


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def main():
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    prog = [
        SockFilter(0x20, 0, 0, 0),                             # A = seccomp_data.nr
        SockFilter(0x35, 0, 2, IO_URING_SETUP),                # A >= 425 ? next : allow
        SockFilter(0x25, 1, 0, IO_URING_REGISTER),             # A > 427 ? allow : next
        SockFilter(0x06, 0, 0, SECCOMP_RET_ERRNO | EPERM),
        SockFilter(0x06, 0, 0, SECCOMP_RET_ALLOW),
    ]
    arr = (SockFilter * len(prog))(*prog)
    fprog = SockFprog(len(prog), arr)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        sys.stderr.write("no-io-uring: PR_SET_NO_NEW_PRIVS: %s\n" % os.strerror(ctypes.get_errno()))
        return 1
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        sys.stderr.write("no-io-uring: PR_SET_SECCOMP: %s\n" % os.strerror(ctypes.get_errno()))
        return 1
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
