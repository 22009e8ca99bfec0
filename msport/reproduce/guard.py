"""Run a command that stops when msport reproduce dies: ``python guard.py PARENT_PID COMMAND...``.

Linux sends a process a signal of its choice when its parent dies (``PR_SET_PDEATHSIG``), but only
the process itself can ask for it. ``Popen(preexec_fn=...)`` would ask in the child between fork and
exec, which CPython documents as unsafe when the parent runs threads, as reproduce's
``--parallel-runs`` pool does. So this small program asks in a process of its own, then becomes the
command: ``exec`` keeps the death signal and the process id, so the supervisor's signals (terminate,
then kill) reach torchrun, msrun or the trainer directly.

Run by its path, with the standard library only: it imports nothing of msport, so it starts in
milliseconds. Elsewhere than Linux it only runs the command.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def main(argv):
    parent, command = int(argv[0]), argv[1:]
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            return 1
    os.execvp(command[0], command)  # replaces this process (PATH as the supervisor set it), or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
