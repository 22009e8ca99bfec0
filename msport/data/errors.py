"""The one exception the data layer raises for bad input or bad files."""

from msport.errors import UserError


class DataError(UserError):
    """A data set is missing, malformed, or asked for in a way that cannot work.

    A :class:`~msport.errors.UserError` (hence a ``ValueError``): its message
    is one line that names the offending file or argument and says what to do,
    so the CLI prints it as-is instead of a traceback.
    """
