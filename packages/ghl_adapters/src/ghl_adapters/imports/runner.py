"""The one way a recorded contact import is run over its file, for the API and the CLI alike.

The CLI runs an import in its own process over the operator's file (`run_file`, with a progress bar fed
by the bytes read). The API records a durable import whose upload stays in the upload spool and enqueues
its job in the same transaction; a worker (`ghl worker`, or the one inside `ghl serve`) runs the job, which
calls `run_stored`: it holds the stored file, runs or resumes the import from it
(ghl_core/contacts/import_resume.py) and removes the file once the import is done or failed. A worker
killed mid-file leaves the import running and its file kept; its job is taken up again (stalled-job
recovery) and goes on after the last committed batch.

Failures: an error the import records (a batch that cannot be written, an unreadable file) fails the
import as before; the file goes, and the job ends. When even that could not be recorded (the database
gone), the job fails and comes back under its retry schedule, resuming. A file held by another live
process (the same import still running there) makes the job come back later."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path

from ghl_adapters.uploads import SpooledUpload, UploadSpool
from ghl_core.contacts.csv_rows import CsvSource, text_stream
from ghl_core.contacts.import_models import ContactImport, ImportCounters, ImportStatus
from ghl_core.contacts.import_resume import ImportTakenOver
from ghl_core.contacts.imports import BATCH_SIZE, ContactImportService
from ghl_core.jobs.ports import RetryLater
from ghl_core.tenancy.permissions import Actor

log = logging.getLogger(__name__)

# The counters after each batch and the bytes of the file read so far.
FileProgress = Callable[[ImportCounters, int], None]
_ENDED = (ImportStatus.DONE, ImportStatus.FAILED)
# The request that stored a file lets it go right after its transaction commits, when the job may
# already have started.
_CLAIM_TRIES, _CLAIM_WAIT = 30, 0.1


def open_csv(path: Path) -> io.TextIOWrapper:
    raw = path.open("rb")
    try:
        return text_stream(raw)
    except BaseException:
        raw.close()
        raise


class ContactImportRunner:
    def __init__(
        self,
        *,
        imports: ContactImportService,
        spool: UploadSpool,
        pending: Callable[[], Awaitable[Collection[str]]],
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._imports = imports
        self._spool = spool
        self._pending = pending  # the stored files of the durable imports still to run
        self._batch_size = batch_size

    async def run_file(
        self,
        actor: Actor,
        import_id: uuid.UUID,
        path: Path,
        *,
        progress: FileProgress | None = None,
        resume: bool = False,
        read_all: Callable[[], None] | None = None,
    ) -> ContactImport:
        """Runs the recorded import over the CSV file at `path`."""
        raw = path.open("rb")
        try:
            handle = text_stream(raw)
        except BaseException:
            raw.close()
            raise
        with handle:

            def report(counters: ImportCounters) -> None:
                if progress is not None:
                    progress(counters, raw.tell())

            return await self._imports.run(
                actor,
                import_id,
                CsvSource(handle),
                progress=report,
                batch_size=self._batch_size,
                resume=resume,
                read_all=read_all,
            )

    async def run_stored(self, actor: Actor, import_id: uuid.UUID) -> ContactImport | None:
        """Runs or resumes a durable import from its stored file (the `contacts.import` job)."""
        job = await self._imports.get(actor, import_id, 0)
        if job.source is None:
            return job
        if job.status in _ENDED:
            self._discard(job.source)
            return job
        try:
            held = await self._claim(job.source)
        except BlockingIOError:
            raise RetryLater(f"import {import_id}'s file is held by another process") from None
        except FileNotFoundError:
            await self._imports.fail(actor, import_id, "the uploaded file is gone; upload it again")
            return None
        ended = False
        try:
            finished = await self.run_file(actor, import_id, held.path, resume=True, read_all=held.release)
            ended = True
            return finished
        except ImportTakenOver:
            log.warning("contact import %s is taken further by another run", import_id)
            return None
        except Exception:
            log.exception("contact import %s failed", import_id)
            # Recorded, the import has ended (a retry would only find it failed); otherwise the job
            # fails and its retry resumes the import.
            await self._imports.fail(
                actor, import_id, "the import stopped on an unexpected error; run it again"
            )
            ended = True
            return None
        finally:
            _let_go(held, remove=ended)

    async def _claim(self, name: str) -> SpooledUpload:
        """The stored file, held; waits a moment for the request that stored it to let it go."""
        for _ in range(_CLAIM_TRIES - 1):
            try:
                return self._spool.claim(name)
            except BlockingIOError:
                await asyncio.sleep(_CLAIM_WAIT)
        return self._spool.claim(name)

    def _discard(self, name: str) -> None:
        try:
            held = self._spool.claim(name)
        except (FileNotFoundError, BlockingIOError):
            return
        held.release()

    async def sweep(self) -> int:
        """Removes the spooled files of processes that stopped, except those of durable imports still to
        run. The files are held before the imports are read: a request lets its file go only after its
        import is recorded, so a file taken here is either named by an import read next or nobody's.
        Without the database (not up yet), it removes nothing: the next start sweeps."""
        taken = self._spool.take_unheld()
        try:
            keep = await self._pending()
        except Exception:
            log.warning("the upload spool was not swept: the imports could not be read", exc_info=True)
            keep = {held.name for held in taken}
        return self._spool.remove(taken, keep)


def _let_go(held: SpooledUpload, *, remove: bool) -> None:
    if remove:
        held.release()
    else:
        held.keep()
