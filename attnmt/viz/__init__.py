"""Plots and the HTML report: the optional ``attnmt[viz]`` extra (matplotlib).

Importing this package without matplotlib raises a one-line :class:`UserError` that says
what to install, so ``attnmt plot`` and ``attnmt compare`` fail cleanly without it.
"""

from attnmt.errors import UserError

try:
    import matplotlib  # noqa: F401
except ImportError:
    raise UserError("plots need matplotlib: pip install 'attnmt[viz]'") from None
