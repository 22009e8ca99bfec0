"""Writing files so that a killed process never leaves a half-written one, and sweeping what it left.

Every temporary name has the form ``.{name}.tmp-{pid}`` (plus ``.ckpt`` and
MindSpore's own inner ``.tmp`` for checkpoints), so :func:`sweep_stale_temps`
can recognise and remove the leftovers of a dead process.
"""

import errno
import fnmatch
import os
import re
import shutil
import signal

from msport.errors import UserError, first_line

_TEMP_NAME = re.compile(r"^\..+\.tmp-(\d+)(\.ckpt|\.tmp)?$")
#: Test-only fault injection: ``kill:PATTERN[:N]`` or ``enospc:PATTERN[:N]`` acts on the Nth write of a file
#: whose name matches PATTERN, after its temporary file is complete and before the rename.
FAULT_ENV = "MSPORT_FAULT"
_fault_count = 0
#: Below this much free space, a writer's failure is reported as a full disk.
FULL_DISK_BYTES = 1 << 20


class WriteError(UserError):
    """A writer (torch.save, MindSpore's save_checkpoint...) failed with its own exception type."""


def temp_names(path):
    """The temporary names :func:`atomic_write` may leave beside ``path`` for this process."""
    folder, name = os.path.split(os.path.abspath(str(path)))
    tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}")
    if name.endswith(".ckpt"):
        # MindSpore appends .ckpt to names lacking it, and writes through its own "<stem>.tmp" first.
        return tmp + ".ckpt", tmp + ".tmp"
    return tmp, None


def atomic_write(path, write):
    """Call ``write(tmp)`` on a temporary name in the same folder, then rename it to ``path``.

    The rename is atomic, so readers see the old file or the new one, never a
    part; a failed write leaves no temporary file behind (MindSpore's inner one
    included), and a writer's own exception becomes a one-line error.
    """
    path = str(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp, inner = temp_names(path)
    try:
        try:
            write(tmp)
        except OSError as exc:
            if exc.filename is None:  # a writer's C++ I/O (torch.save, MindSpore) names no file: name ours
                raise OSError(exc.errno, exc.strerror or first_line(exc), path) from exc
            raise
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - writers raise RuntimeError etc. for I/O failures
            raise _write_error(path, exc) from exc
        _inject_fault(path)
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, inner):
            if leftover and os.path.lexists(leftover):
                os.remove(leftover)


def _write_error(path, exc):
    folder = os.path.dirname(os.path.abspath(path))
    if shutil.disk_usage(folder).free < FULL_DISK_BYTES:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), folder)
    return WriteError(f"could not write {path}: {first_line(exc)}")


def _inject_fault(path):
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    kind, _, rest = spec.partition(":")
    pattern, _, nth = rest.partition(":")
    if not fnmatch.fnmatch(os.path.basename(path), pattern):
        return
    global _fault_count
    _fault_count += 1
    if _fault_count != int(nth or 1):
        return
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.dirname(os.path.abspath(path)))


def atomic_write_text(path, text):
    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            fh.write(text)

    atomic_write(path, write)


def sweep_stale_temps(folder, *, every_pid=False):
    """Remove temporary files of dead processes (all but ours with ``every_pid``, for a locked folder)."""
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in os.listdir(folder):
        match = _TEMP_NAME.match(name)
        if not match:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or (not every_pid and _alive(pid)):
            continue
        try:
            os.remove(os.path.join(folder, name))
            removed.append(name)
        except FileNotFoundError:
            pass
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
