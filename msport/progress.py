"""Where a long command is: a tqdm bar over its stages on stderr.

Libraries take a ``progress`` callable and call it with the name of each stage
as it starts; commands pass a :class:`Stages`. Like tqdm's own bars here, it
shows only when stderr is a terminal, so logs, pipes and tests get the results
and no bar.
"""

import sys

from tqdm import tqdm


class Stages:
    """``stages("running torch")`` marks the start of the next stage; ``close()`` (or ``with``) ends the bar."""

    def __init__(self, command, total, file=None):
        self._bar = tqdm(total=total, desc=command, file=file or sys.stderr, disable=None, leave=False,
                         dynamic_ncols=True, bar_format="{desc} [{elapsed}]")
        self._command, self._total, self._number = command, total, 0

    def __call__(self, stage):
        self._number += 1
        self._bar.set_description_str(f"{self._command}: {self._number}/{self._total} {stage}")

    def close(self):
        self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def no_progress(stage):
    """The default ``progress`` of library functions: say nothing."""
    del stage
