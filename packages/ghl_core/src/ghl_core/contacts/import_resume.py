"""Resuming a durable import where its last committed batch ended, writing no row twice.

What a run knows between batches, and how a resumed run gets it back:
- Where it is: `counters.processed`, the rows of the committed batches, saved in each batch's own
  transaction with its contacts, counters and rejected rows. A resumed run reads the same file, skips
  that many rows (the reader yields the same rows in the same order) and goes on; so each row is written
  by exactly one committed batch, and the counters and the error report hold each row once.
- Who is who: the identity groups are resolved again over the whole file (ghl_core.contacts.
  import_identities), which is deterministic. The contacts the groups of the committed batches made are
  saved with each batch (`ContactImport.open_groups`): the resumed run takes them as those groups'
  contacts again (their later rows merge into them, whatever the duplicate policy), and the resolution
  does not count them among the contacts that existed before the import. The list is rewritten with
  each batch, so it costs what the open groups weigh: fine for the uploads the API takes (bounded by
  GHL_MAX_BODY_BYTES), and not kept at all for the CLI's imports, which are not resumed. (Should the API
  take files of millions of rows, a table of one row per group contact would keep it linear.)
- That it is the only run: a batch first checks, under the location's import lock, that the stored
  `processed` is still what this run last wrote. A run that finds otherwise stops (`ImportTakenOver`)
  without touching the import: another run of the same job (a worker thought stalled and recovered
  while still alive) has taken it further.

One difference with an uninterrupted run remains: a contact that existed before the import and that the
resolution matched to a group by an identifier a committed batch has since changed is no longer that
group's when the run resumes (only where one contact matched two groups by different identifiers)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import deque
from collections.abc import Iterable, Iterator

from ghl_core.contacts.csv_rows import CsvRow
from ghl_core.contacts.import_identities import Identities
from ghl_core.contacts.import_models import ContactImport, ContactImportRepository
from ghl_core.contacts.models import Contact

# Rows skipped between two looks at the event loop (read, not validated: a few milliseconds).
SKIP_SLICE = 5_000


class ImportTakenOver(Exception):
    """Another run of the same import committed a batch since this run's last one: this run stops."""


async def skip_rows(rows: Iterator[CsvRow], count: int) -> None:
    """Reads past the first `count` rows (those of the committed batches)."""
    for start in range(0, count, SKIP_SLICE):
        deque(itertools.islice(rows, min(SKIP_SLICE, count - start)), maxlen=0)
        await asyncio.sleep(0)


def reopen_groups(
    identities: Identities | None, group_contacts: dict[int, uuid.UUID], own: Iterable[Contact]
) -> None:
    """Gives each of a resumed run's groups back the contact its committed rows made. A contact holds
    only its group's identifiers (the rows that made and changed it are the group's)."""
    if identities is None:
        return
    for contact in own:
        group = identities.group(contact.email, contact.phone)
        if group >= 0:
            group_contacts[group] = contact.id


async def check_progress(repo: ContactImportRepository, job: ContactImport, location_id: uuid.UUID) -> None:
    """Takes the location's import lock for the batch's transaction and checks that this run is still
    the one taking the import further."""
    await repo.lock_location(location_id)
    stored = await repo.get(job.id, 0)
    if stored is None or stored.counters.processed != job.counters.processed:
        raise ImportTakenOver(f"import {job.id} was taken further by another run")
