"""Subcommands of `stream`: one module each, registered in `stream.cli.COMMANDS`."""
