"""Writing files so that a killed process never leaves a half-written one."""

import os


def atomic_write(path, write):
    """Call ``write(tmp)`` on a temporary name in the same folder, then rename it to ``path``.

    The rename is atomic, so readers see the old file or the new one, never a
    part; a failed write leaves no temporary file behind.
    """
    path = str(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    if path.endswith(".ckpt"):
        tmp += ".ckpt"  # MindSpore appends .ckpt to names lacking it
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            fh.write(text)

    atomic_write(path, write)
