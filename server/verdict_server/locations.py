"""Where a Verdict installation keeps its files: shared by the server and the client commands, importing neither."""

from __future__ import annotations

import os
from pathlib import Path

TOKEN_FILE_NAME = "admin.token"  # inside the data directory, unless --token-file names another


def default_data_dir() -> Path:
    """$VERDICT_DATA, else the XDG data directory: the same store whichever folder the server starts in."""
    if os.environ.get("VERDICT_DATA"):
        return Path(os.environ["VERDICT_DATA"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "verdict"


__all__ = ["TOKEN_FILE_NAME", "default_data_dir"]
