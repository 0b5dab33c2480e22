"""Attachment contents and quarantined raw messages, kept as files named by their SHA-256
(``<attachments dir>/ab/cd/abcd...``), never in the store. Content-addressed, so writing
the same content twice (a provider retry, a second router) is one file; a write is a
temporary file fsynced and renamed into place, so a reader never sees half of one."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from router.errors import BackendUnavailable, InputError

_KEY = re.compile(r"^[0-9a-f]{64}$")


class Blobs:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise InputError("an attachment key is 64 lower-case hex digits (its SHA-256)")
        return self.root / key[:2] / key[2:4] / key

    async def put_all(self, blobs: Mapping[str, bytes]) -> None:
        """Keep every ``key -> content`` (the key must be the content's SHA-256)."""
        if blobs:
            await asyncio.to_thread(self._write_all, dict(blobs))

    async def put(self, content: bytes) -> str:
        key = hashlib.sha256(content).hexdigest()
        await self.put_all({key: content})
        return key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def _write_all(self, blobs: dict[str, bytes]) -> None:
        for key, content in blobs.items():
            if hashlib.sha256(content).hexdigest() != key:
                raise InputError(f"attachment {key[:12]}... does not match its content")
            try:
                self._write(self.path(key), content)
            except OSError as exc:
                raise BackendUnavailable(f"cannot write the attachment directory: {exc}") from None

    @staticmethod
    def _write(target: Path, content: bytes) -> None:
        if target.is_file():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
