"""The one exception type for user mistakes.

Library code raises :class:`UserError` (or a subclass) for anything a user can fix: a bad
config, a missing or malformed file, bad input text. The CLI prints its message as one
line and exits non-zero; it never shows a traceback for these.
"""


class UserError(Exception):
    """A mistake the user can fix; the message is one line that names the problem."""
