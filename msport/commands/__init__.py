"""Subcommands of the ``msport`` CLI; see :mod:`msport.cli`."""
