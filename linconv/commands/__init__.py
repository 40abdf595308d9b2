"""Subcommands of ``python -m linconv`` (see linconv/__main__.py)."""
