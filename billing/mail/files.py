"""Writing emails as ``.eml`` files: the transport when no SMTP server is configured.

Useful in development and for merchants who hand mail to another system. Each message becomes
``<outbox id>-<template>.eml``, written to a temporary name and renamed, so a reader polling the
folder never sees half a file; writing the same message again replaces the file (idempotent).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from email.message import EmailMessage
from pathlib import Path

from billing.mail.message import OUTBOX_ID_HEADER, TEMPLATE_HEADER
from billing.mail.transport import SendFailed

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def file_name(msg: EmailMessage) -> str:
    """``42-payment_failed.eml``; falls back to the Message-ID for messages built elsewhere."""
    ident = msg.get(OUTBOX_ID_HEADER) or str(msg.get("Message-ID", "message")).strip("<>")
    template = msg.get(TEMPLATE_HEADER) or "email"
    return _UNSAFE.sub("_", f"{ident}-{template}") + ".eml"


class FileTransport:
    """A ``Transport`` that writes each message into ``directory`` (created on first use)."""

    name = "file"

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileTransport({str(self.directory)!r})"

    def send(self, msg: EmailMessage) -> str:
        path = self.directory / file_name(msg)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, bytes(msg))
        except OSError as exc:
            raise SendFailed(f"cannot write {path}: {exc.strerror or exc}") from exc
        return self.name

    def close(self) -> None:
        """Nothing is held open between messages."""


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """Make the rename durable before the outbox row is marked sent (best effort off POSIX)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
