"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class UserError(ValueError):
    """Bad input: the message says what was wrong and what to do."""
