"""Errors a user can fix, and the one error boundary every entry point runs under.

Known failure classes (bad input, unreadable files, failed writes) become one
line on stderr and exit code 2; a traceback is left for real bugs only.
"""

import argparse
import errno
import math
import sys


class UserError(ValueError):
    """Bad input: the message says what was wrong and what to do."""


def first_line(exc):
    """The first non-empty line of an exception's message, or its type name (``str(exc)`` may be empty)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def few(items, n=5):
    """``"a, b, c (+4 more)"``: the first ``n`` of a list of names for a one-line message; ``"none"`` if empty."""
    items = [str(i) for i in items]
    if not items:
        return "none"
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def describe_os_error(exc):
    """One line for a failed read or write, naming the path and what to do."""
    path = exc.filename or "the output folder"
    if exc.errno == errno.ENOSPC:
        return f"no space left on {path}; free some space and rerun (files written before are kept)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {path}: {exc.strerror}; choose a folder you can write to"
    return f"{path}: {exc.strerror or first_line(exc)}"


def tolerance(text):
    """argparse type of a tolerance flag: a finite number >= 0 (nan fails every comparison, inf passes all)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 1e-3, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def positive_int(text):
    """argparse type of a count flag (steps, batch size): an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``prog: error: ...``) and exit code 2.

    Abbreviated flags are off: ``--init`` must never quietly mean ``--init-from``.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def run_guarded(prog, main):
    """Run ``main()`` (returning the exit code) under the one error boundary of an entry point."""
    try:
        return main()
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):  # output piped into e.g. head, which has exited
            sys.stderr.close()
            return 0
        print(f"{prog}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
