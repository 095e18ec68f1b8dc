"""Subcommands of the `attnmt` CLI, one module each (see attnmt.cli.COMMANDS)."""
