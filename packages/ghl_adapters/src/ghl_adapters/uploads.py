"""Spooled uploads: the file an upload is written to before the background work that reads it (a contact
import sent over the API), under the data folder (`$GHL_DATA_DIR/spool/imports`), never in the system's
temporary folder. The files hold personal data (names, e-mail addresses): they are created 0600 in a
0700 folder, and removed once their work ends.

A spooled file is held under an exclusive `flock` for as long as its process works on it. A process that
stops (a crash, `kill -9`, a power cut) leaves its files behind but not its locks, so `sweep`, run when the
server starts, removes every file nobody holds: an interrupted import's upload does not stay on disk. The
files of other live processes sharing the folder (several server processes on one data folder) are held,
so they stay. A file is locked right after it is created; should a sweep remove it in between, the
creator sees that its file is gone and makes another.

A durable contact import keeps its upload here until it ends: the request records the import (naming the
file) and lets the file go (`keep`), and the worker that runs the import holds it (`claim`) and removes it
when the import is done or failed. `sweep` is told the files of the imports still to run or running and
leaves them, so an import whose worker was killed finds its file when it is taken up again. (The workers
must share the server's data folder.)"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

_PREFIX = "upload-"


class SpooledUpload:
    """One spooled file, locked by this process until `release`."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self._handle = handle

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)

    @property
    def name(self) -> str:
        return self.path.name

    def finish_writing(self) -> None:
        self._handle.flush()

    def keep(self) -> None:
        """Lets the lock go and leaves the file (a durable import's, now named by its record)."""
        if not self._handle.closed:
            self._handle.close()

    def release(self) -> None:
        """Removes the file and lets its lock go; safe to call twice."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if not self._handle.closed:
            self._handle.close()


class UploadSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _folder(self) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.directory

    def create(self, suffix: str = ".csv") -> SpooledUpload:
        folder = self._folder()
        while True:
            fd, name = tempfile.mkstemp(prefix=_PREFIX, suffix=suffix, dir=folder)
            handle = os.fdopen(fd, "wb")
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            path = Path(name)
            try:
                if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                    return SpooledUpload(path, handle)
            except FileNotFoundError:
                pass
            handle.close()  # a sweep took it before we held it

    def claim(self, name: str) -> SpooledUpload:
        """Holds a kept file again (FileNotFoundError when it is gone, BlockingIOError when a live
        process holds it)."""
        if Path(name).name != name or not name.startswith(_PREFIX):
            raise FileNotFoundError(f"{name!r} is no spooled upload")
        path = self.directory / name
        handle = path.open("r+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino:
                raise FileNotFoundError(f"{name!r} was removed")
        except BaseException:
            handle.close()
            raise
        return SpooledUpload(path, handle)

    def take_unheld(self) -> list[SpooledUpload]:
        """Holds every file no live process holds (to remove or keep each, then let go)."""
        if not self.directory.is_dir():
            return []
        taken = []
        for path in self.directory.glob(f"{_PREFIX}*"):
            try:
                taken.append(self.claim(path.name))
            except (BlockingIOError, FileNotFoundError):
                continue  # held by a live process, or gone
        return taken

    def sweep(self, keep: Collection[str] = ()) -> int:
        """Removes the files no live process holds, except those named in `keep` (the files of durable
        imports still to run); returns how many. `keep` should be read after `take_unheld` (as
        ContactImportRunner.sweep does): a file is let go only once its import is recorded."""
        return self.remove(self.take_unheld(), keep)

    @staticmethod
    def remove(taken: list[SpooledUpload], keep: Collection[str] = ()) -> int:
        """Removes the taken files not named in `keep`, lets go of the others; returns how many went."""
        removed = 0
        for held in taken:
            if held.name in keep:
                held.keep()
            else:
                held.release()
                removed += 1
        if removed:
            log.info("removed %d spooled upload(s) left by a process that stopped", removed)
        return removed
