"""The command line: ``attnmt COMMAND``, one module per command (see :mod:`.main`)."""

from attnmt.cli.main import main

__all__ = ["main"]
