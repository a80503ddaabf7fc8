"""CSV import of N contacts (default 1,000,000; `python bench/contacts_import.py 200000` for fewer)
through the import engine (the code path of `ghl contacts import` and POST /contacts/imports), beside
PostgreSQL COPY of the same file into a plain staging table, in the same run; beside COPY of the same
rows into a table shaped like `contacts` with all of its indexes (what any writer of contacts pays, the
floor of index maintenance); and beside the engine's pure-Python part alone (reading the CSV and
validating each row, no database): the ceiling of this design. Prints rows/s and memory."""

from __future__ import annotations

import asyncio
import csv
import itertools
import resource
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_database

from ghl_adapters.container import build_container, close_container
from ghl_adapters.runtime import freeze_heap
from ghl_adapters.settings import Settings
from ghl_cli.commands.contacts import location_actor
from ghl_core.contacts.csv_rows import CsvSource
from ghl_core.contacts.import_identities import resolve
from ghl_core.contacts.import_models import ContactImport, ImportOptions
from ghl_core.contacts.import_rows import ImportContext
from ghl_core.contacts.imports import BATCH_SIZE, ContactImportService
from ghl_core.contacts.models import DuplicatePolicy
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation

AREAS = (212, 312, 415, 617, 646, 702, 713, 773, 818, 917)
HEADER = ["First Name", "Last Name", "Email", "Phone", "Company Name", "City", "Postal Code", "Tags"]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def write_csv(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i in range(n):
            # Real US area codes, so every number is valid and distinct.
            rest = i // len(AREAS)
            phone = f"+1{AREAS[i % len(AREAS)]}{200 + rest // 10000 % 800:03d}{rest % 10000:04d}"
            w.writerow(
                [
                    f"First{i}",
                    f"Last{i}",
                    f"person{i}@example.com",
                    phone,
                    "Acme",
                    "Chicago",
                    "60601",
                    "bench",
                ]
            )


def write_contacts_csv(source: Path, target: Path) -> None:
    """The same rows as `contacts` columns, the tag as an array literal."""
    with (
        source.open(encoding="utf-8", newline="") as f,
        target.open("w", newline="", encoding="utf-8") as out,
    ):
        rows = csv.reader(f)
        next(rows)
        w = csv.writer(out)
        for row in rows:
            w.writerow([*row[:7], "{" + row[7] + "}"])


def copy_file(conn: psycopg.Connection, statement: str, path: Path) -> float:
    """Seconds to COPY `path` with `statement`."""
    started = time.perf_counter()
    with conn.cursor() as cur, cur.copy(statement) as copy, path.open("rb") as f:
        while chunk := f.read(1 << 20):
            copy.write(chunk)
    return time.perf_counter() - started


async def identity_pass_rate(
    path: Path, n: int, service: ContactImportService, actor: Actor, job: ContactImport, location: Location
) -> float:
    """Rows/s of the read that finds who is who before the first batch (ghl_core.contacts.
    import_identities): with distinct identifiers, one pass of cheap keys and two Bloom filters."""
    ctx = ImportContext(location, DuplicatePolicy(), [], {})
    read = service._row_identifiers(actor, job, ctx)
    assert read is not None
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as f:
        found = await resolve(CsvSource(f), read, DuplicatePolicy())
    elapsed = time.perf_counter() - started
    print(f"  (groups found: {found.groups if found else 0})")
    return n / elapsed


def validation_rate(
    path: Path, service: ContactImportService, job: ContactImport, location: Location
) -> float:
    """Rows/s of the engine's per-row work before the database: CSV reading, mapping, validation."""
    ctx = ImportContext(location, DuplicatePolicy(), [], {})
    started = time.perf_counter()
    rows = 0
    with path.open(encoding="utf-8", newline="") as f:
        source = iter(CsvSource(f))
        while chunk := list(itertools.islice(source, BATCH_SIZE)):
            service.rows.prepare(job, ctx, chunk)
            rows += len(chunk)
    return rows / (time.perf_counter() - started)


async def run(url: str, n: int) -> None:
    settings = Settings(database_url=url, secret_key="bench-" + "x" * 40, _env_file=None)  # type: ignore[call-arg]
    container = build_container(settings, url)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        write_csv(path, n)
        size = path.stat().st_size / 2**20
        print(f"file: {n:,} rows, {size:.0f} MiB")
        try:
            agency = await container.tenancy().create_agency(Actor.operator(), "Bench agency")
            location = await container.tenancy().create_location(
                Actor.operator(), NewLocation(name="Bench", timezone="America/Chicago"), agency_id=agency.id
            )
            actor = await location_actor(container, location.id)
            service = container.contact_imports()
            samples: list[float] = []
            base = rss_mb()
            started = time.perf_counter()
            with path.open(encoding="utf-8", newline="") as f:
                source = CsvSource(f)
                job = await service.start(actor, source.headers, ImportOptions())
                freeze_heap()  # as `ghl contacts import` and the server do
                done = await service.run(actor, job.id, source, progress=lambda c: samples.append(rss_mb()))
            elapsed = time.perf_counter() - started
            engine_rate = n / elapsed
            print(f"engine: {done.counters.as_dict()} in {elapsed:.1f} s = {engine_rate:,.0f} rows/s")
            q = max(1, len(samples) // 4)
            print(
                f"engine RSS: before {base:.0f} MiB, after first quarter {samples[q - 1]:.0f} MiB, "
                f"end {samples[-1]:.0f} MiB, max {max(samples):.0f} MiB; ru_maxrss "
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
            )
            validate_rate = validation_rate(path, service, done, location)
            print(f"CSV reading + validation alone (no database): {validate_rate:,.0f} rows/s")
            identity_rate = await identity_pass_rate(path, n, service, actor, done, location)
            print(f"who-is-who read alone (before the first batch): {identity_rate:,.0f} rows/s")
        finally:
            await close_container(container)
        libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        shaped = Path(tmp) / "contacts-shaped.csv"
        write_contacts_csv(path, shaped)
        with psycopg.connect(libpq, autocommit=True) as conn:
            cols = ", ".join(f"c{i} text" for i in range(len(HEADER)))
            conn.execute(f"CREATE TABLE bench_staging ({cols})")
            copy_elapsed = copy_file(
                conn, "COPY bench_staging FROM STDIN WITH (FORMAT csv, HEADER true)", path
            )
            # Owner connection, no row-level security: the indexes are the whole cost here.
            conn.execute(
                "CREATE TABLE bench_contacts (LIKE contacts INCLUDING DEFAULTS INCLUDING GENERATED "
                "INCLUDING INDEXES INCLUDING CONSTRAINTS)"
            )
            conn.execute("ALTER TABLE bench_contacts ALTER id SET DEFAULT gen_random_uuid()")
            conn.execute(
                sql.SQL("ALTER TABLE bench_contacts ALTER location_id SET DEFAULT {}").format(
                    sql.Literal(str(location.id))
                )
            )
            indexes = conn.execute(
                "SELECT count(*) FROM pg_indexes WHERE tablename = 'bench_contacts'"
            ).fetchone()
            shaped_elapsed = copy_file(
                conn,
                "COPY bench_contacts (first_name, last_name, email, phone, company_name, city, "
                "postal_code, tags) FROM STDIN WITH (FORMAT csv)",
                shaped,
            )
        copy_rate = n / copy_elapsed
        shaped_rate = n / shaped_elapsed
        print(f"COPY into a staging table: {copy_elapsed:.1f} s = {copy_rate:,.0f} rows/s")
        print(
            f"COPY into a contacts-shaped table with its {indexes[0] if indexes else '?'} indexes: "
            f"{shaped_elapsed:.1f} s = {shaped_rate:,.0f} rows/s "
            f"(= {shaped_rate / copy_rate:.3f} of COPY into staging)"
        )
        print(
            f"engine / COPY = {engine_rate / copy_rate:.4f}; engine / COPY into contacts-shaped = "
            f"{engine_rate / shaped_rate:.3f}; engine / validation alone = {engine_rate / validate_rate:.2f}"
        )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with bench_database() as url:
        asyncio.run(run(url, n))


if __name__ == "__main__":
    main()
