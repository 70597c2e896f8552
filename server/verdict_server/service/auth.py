"""The admin bearer token: created on first start when none is configured, checked in constant time."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

import grpc

from ..locations import TOKEN_FILE_NAME
from . import errors

log = logging.getLogger(__name__)


def load_or_create_token(token_file: Path | None, data_dir: Path) -> tuple[str, Path]:
    """Reads the configured token file, or the data directory's own one, creating that (mode 0600) if absent."""
    if token_file is not None:
        token = _read_token(token_file)
        return token, token_file
    path = data_dir / TOKEN_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _create_token_file(path)
        log.info("created an admin token in %s (mode 0600); admin calls need 'authorization: Bearer <token>'", path)
    return _read_token(path), path


def _create_token_file(path: Path) -> None:
    # O_EXCL: two processes starting on one data directory must not overwrite each other's token.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")


def _read_token(path: Path) -> str:
    try:
        if path.stat().st_mode & 0o002:
            # Anyone on the machine could replace the token, and with it hold every admin right.
            raise SystemExit(f"the admin token file {path} is writable by other users: chmod o-w it (600 is best)")
        token = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise SystemExit(f"cannot read the admin token file {path}: {err.strerror}") from None
    if len(token) < 16:
        raise SystemExit(f"the admin token in {path} is shorter than 16 characters")
    return token


class TokenCheck:
    """Checks `authorization: Bearer <token>` metadata; aborts the call otherwise."""

    def __init__(self, token: str) -> None:
        self._expected = token.encode("utf-8")

    def require(self, context: grpc.ServicerContext) -> None:
        presented = _bearer(context.invocation_metadata())
        if presented is None:
            errors.abort(
                context,
                grpc.StatusCode.UNAUTHENTICATED,
                errors.TOKEN_MISSING,
                "admin calls need 'authorization: Bearer <token>' metadata",
            )
        if not hmac.compare_digest(presented.encode("utf-8"), self._expected):
            errors.abort(
                context, grpc.StatusCode.PERMISSION_DENIED, errors.TOKEN_INVALID, "the admin token is not valid"
            )


def _bearer(metadata) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None
