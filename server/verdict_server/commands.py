"""The client commands of the `verdict` CLI (eval, route, rules ..., select, deselect): they call a running server."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the client subcommands to the `verdict` parser."""
