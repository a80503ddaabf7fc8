"""Who is who in an import file, decided over the whole file before any row is written, so that what an
import makes does not depend on the order of its rows.

Rows linked by a shared e-mail address or phone number (directly, or through other rows) are one person:
an identity group. A group with two or more rows becomes one contact, its rows merged into it in file
order (ghl_core.contacts.import_decisions): a later non-blank value wins (a blank cell never clears one),
tags are added, custom fields and DND channels are set key by key, the first attribution touch stays.
The contacts that
existed before the import are matched by every identifier of the group, so a group whose e-mail-only row
comes first still lands on the contact its phone number belongs to. Where the location forbids duplicate
contacts, a group that matches two or more existing contacts is refused as a whole, every row of it
with a reason naming them (they need merging first); where duplicates are allowed, the group goes to the
one the location's duplicate priority (e-mail or phone first, then the oldest) picks. Rows that are
rejected for any other reason link nothing. (The `create` duplicate policy in a location that allows
duplicates asks for a contact per row: there is no grouping then.)

Memory stays bounded, in two passes before the import's own:

1. Every row's e-mail address and phone number are turned into keys equal to their normalised forms
   (without the e-mail and phone parsers for the usual spellings: `quick_email_key`,
   `ghl_core.shared.phones.quick_phone_key`, property-tested against the parsers; the parsers,
   memoised, for the rest), and counted by 32-bit fingerprints (`KeyCounts`, 4 bytes a slot). A small
   file whose identifiers are all distinct stops here, with nothing kept.
2. Otherwise the file is read again: the rows with an identifier seen twice (or sharing a fingerprint)
   are validated as the import validates them; their normalised identifiers go into a union-find, keyed
   by their 64-bit hashes in an open-addressing table of machine integers (about 60 bytes an identifier:
   63 MiB for a million), and are looked up among the location's contacts, 500 rows at a time.

The import then asks, for each row it writes, which group its identifiers belong to. Two identifiers
with the same 64-bit hash would be taken for one (about one chance in 10^7 for a file of a million
rows)."""

from __future__ import annotations

import re
import uuid
from array import array
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ghl_core.contacts.csv_rows import CsvRow
from ghl_core.contacts.models import Contact, DuplicatePolicy, DuplicatePriority

_SIMPLE_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
# Rows read between two looks at the event loop in the first pass (a few milliseconds).
SCAN_SLICE = 200
# Candidate rows validated between two looks at the event loop (as the import's own slices).
RESOLVE_SLICE = 5
LOOKUP_ROWS = 500
_EMAIL, _PHONE = 0, 1


def quick_email_key(value: str) -> str | None:
    """The normalised form of an e-mail address of the usual shape (ASCII, dot-atom, a domain of
    letters, digits and hyphens), which is the address lower-cased; None for anything else (the
    validator's work). Whether the address is valid is not checked."""
    text = value.strip()
    if len(text) > 254 or not _SIMPLE_EMAIL.fullmatch(text):
        return None
    lowered = text.lower()
    return None if "xn--" in lowered else lowered


class KeyCounts:
    """Which keys were seen twice, by 32-bit fingerprints in an open-addressing table (30 bits of the key's
    hash, a used bit and a seen-twice bit; 4 bytes a slot, at most half full: 16 MiB for a million rows of
    two keys). Two keys with one fingerprint pass for a repeat, which the second read, exact, sorts out
    (a few hundred rows of a million distinct ones)."""

    def __init__(self) -> None:
        self._slots = array("I", bytes(4 * 1024))
        self._used = 0
        self.repeated = 0  # keys (or fingerprints) seen a second time

    def _slot(self, fingerprint: int) -> int:
        slots, mask = self._slots, len(self._slots) - 1
        i = (fingerprint >> 2) & mask
        while (v := slots[i]) and v & ~2 != fingerprint:
            i = (i + 1) & mask
        return i

    def add(self, key: str) -> None:
        fingerprint = (hash(key) & 0xFFFFFFFC) | 1
        i = self._slot(fingerprint)
        v = self._slots[i]
        if v:
            if not v & 2:
                self._slots[i] = v | 2
                self.repeated += 1
            return
        self._slots[i] = fingerprint
        self._used += 1
        if 2 * self._used > len(self._slots):
            old = self._slots
            self._slots = array("I", bytes(8 * len(old)))
            for v in old:
                if v:
                    self._slots[self._slot(v & ~2)] = v

    def twice(self, key: str) -> bool:
        return bool(self._slots[self._slot((hash(key) & 0xFFFFFFFC) | 1)] & 2)


def _key_hash(key: str) -> int:
    h = hash(key)
    return h if h else 1  # 0 marks an empty slot


class Identities:
    """A union-find over the normalised identifiers of the candidate rows, with the contacts that
    existed before the import, in machine-integer arrays."""

    def __init__(self, policy: DuplicatePolicy) -> None:
        self._policy = policy
        self._slots = array("q", bytes(8 * 1024))  # identifier hashes, open addressing
        self._slot_nodes = array("i", bytes(array("i").itemsize * 1024))
        self._parent = array("i")
        self._rows = array("i")  # rows whose first identifier is this node
        self._kind = bytearray()  # _EMAIL or _PHONE
        self._match = array("i")  # the existing contact holding this identifier (its index), or -1
        self._contact_ids = bytearray()  # 16 bytes a contact
        self._contact_created = array("q")  # microseconds since the epoch
        self._size = array("i")  # per root, once finished: the group's rows
        self._left = array("i")  # per root: its rows not yet written
        self._target = array("i")  # per root: the existing contact its rows go to, or -1
        self._other = array("i")  # per root: a second existing contact (the group is refused), or -1
        self.groups = 0  # groups of two rows or more

    # -- the table --------------------------------------------------------------------------------
    def _find_slot(self, h: int) -> int:
        slots, mask = self._slots, len(self._slots) - 1
        i = h & mask
        while True:
            k = slots[i]
            if k == h or k == 0:
                return i
            i = (i + 1) & mask

    def _grow(self) -> None:
        old_slots, old_nodes = self._slots, self._slot_nodes
        size = 2 * len(old_slots)
        self._slots = array("q", bytes(8 * size))
        self._slot_nodes = array("i", bytes(old_nodes.itemsize * size))
        for i, k in enumerate(old_slots):
            if k:
                j = self._find_slot(k)
                self._slots[j], self._slot_nodes[j] = k, old_nodes[i]

    def node(self, key: str) -> int:
        """The node of an identifier key (`e:…`, `p:…`), or -1."""
        h = _key_hash(key)
        i = self._find_slot(h)
        return self._slot_nodes[i] if self._slots[i] == h else -1

    def _add_node(self, key: str, kind: int) -> int:
        h = _key_hash(key)
        i = self._find_slot(h)
        if self._slots[i] == h:
            return self._slot_nodes[i]
        node = len(self._parent)
        self._slots[i], self._slot_nodes[i] = h, node
        self._parent.append(node)
        self._rows.append(0)
        self._kind.append(kind)
        self._match.append(-1)
        if 2 * len(self._parent) > len(self._slots):
            self._grow()
        return node

    def _root(self, node: int) -> int:
        parent = self._parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def _contact_key(self, index: int) -> tuple[int, bytes]:
        """Oldest first, then by id: the order of the import's own candidates."""
        return self._contact_created[index], bytes(self._contact_ids[16 * index : 16 * index + 16])

    def _contact(self, index: int) -> uuid.UUID:
        return uuid.UUID(bytes=bytes(self._contact_ids[16 * index : 16 * index + 16]))

    # -- building ---------------------------------------------------------------------------------
    def add_row(self, email: str | None, phone: str | None) -> None:
        a = self._add_node(f"e:{email}", _EMAIL) if email else -1
        b = self._add_node(f"p:{phone}", _PHONE) if phone else -1
        self._rows[a if a >= 0 else b] += 1
        if a >= 0 and b >= 0:
            ra, rb = self._root(a), self._root(b)
            if ra != rb:
                self._parent[max(ra, rb)] = min(ra, rb)

    def match(self, contacts: Iterable[Contact]) -> None:
        """Existing contacts holding some of the added identifiers."""
        for contact in contacts:
            index = -1
            for key in (
                f"e:{contact.email}" if contact.email else "",
                f"p:{contact.phone}" if contact.phone else "",
            ):
                node = self.node(key) if key else -1
                if node < 0:
                    continue
                if index < 0:
                    index = len(self._contact_created)
                    self._contact_ids += contact.id.bytes
                    self._contact_created.append(int(contact.created_at.timestamp() * 1_000_000))
                known = self._match[node]
                # Several contacts share an identifier only where duplicates are allowed.
                if known < 0 or self._contact_key(index) < self._contact_key(known):
                    self._match[node] = index

    def finish(self) -> None:
        """Folds each node's rows and matches into its group's root."""
        count = len(self._parent)
        self._size = array("i", bytes(self._parent.itemsize * count))
        self._target = array("i", [-1]) * count
        self._other = array("i", [-1]) * count
        rank = array("i", [-1]) * count  # 0 when the target came by the priority identifier, else 1
        priority = _EMAIL if self._policy.priority is DuplicatePriority.EMAIL else _PHONE
        for node in range(count):
            root = self._root(node)
            self._size[root] += self._rows[node]
            found = self._match[node]
            if found < 0:
                continue
            target = self._target[root]
            if self._policy.allow_duplicates:
                mine = 0 if self._kind[node] == priority else 1
                if target < 0 or (mine, self._contact_key(found)) < (rank[root], self._contact_key(target)):
                    self._target[root], rank[root] = found, mine
            elif target < 0:
                self._target[root] = found
            elif self._contact(found) != self._contact(target) and self._other[root] < 0:
                self._other[root] = found
        self._left = array("i", self._size)
        self.groups = sum(1 for node in range(count) if self._parent[node] == node and self._size[node] > 1)

    # -- reading ----------------------------------------------------------------------------------
    def group(self, email: str | None, phone: str | None) -> int:
        """The group of a row's normalised identifiers when it has two rows or more, else -1."""
        node = self.node(f"e:{email}") if email else -1
        if node < 0 and phone:
            node = self.node(f"p:{phone}")
        if node < 0:
            return -1
        root = self._root(node)
        return root if self._size[root] > 1 else -1

    def existing(self, group: int) -> uuid.UUID | None:
        """The contact that existed before the import and the group's rows go to."""
        index = self._target[group]
        return self._contact(index) if index >= 0 else None

    def refused(self, group: int) -> tuple[uuid.UUID, uuid.UUID] | None:
        """Two existing contacts the group links, where duplicates are not allowed."""
        other = self._other[group]
        return (self._contact(self._target[group]), self._contact(other)) if other >= 0 else None

    def written(self, group: int) -> bool:
        """Counts one row of the group as written; True when it was the group's last."""
        self._left[group] -= 1
        return self._left[group] == 0


@dataclass(frozen=True, slots=True)
class RowIdentifiers:
    """How the resolution reads rows: their identifier keys (None when a row is sure to be rejected),
    their validated fields (None when rejected), and the existing contacts holding identifiers."""

    keys: Callable[[CsvRow], tuple[str | None, str | None] | None]
    validate: Callable[[CsvRow], dict[str, Any] | None]
    lookup: Callable[[Sequence[str], Sequence[str]], Awaitable[list[Contact]]]
    tick: Callable[[], Awaitable[None]]  # a look at the event loop (and the import's heartbeat)


async def resolve(rows: Iterable[CsvRow], read: RowIdentifiers, policy: DuplicatePolicy) -> Identities | None:
    """The identity groups of the file, or None when no two rows share an e-mail address or phone."""
    seen = KeyCounts()
    for n, row in enumerate(rows, 1):
        if n % SCAN_SLICE == 0:
            await read.tick()
        keys = None if row.problem else read.keys(row)
        if keys is None:
            continue
        email, phone = keys
        if email:
            seen.add(f"e:{email}")
        if phone:
            seen.add(f"p:{phone}")
    if not seen.repeated:
        return None
    identities = Identities(policy)
    emails: set[str] = set()
    phones: set[str] = set()

    async def look_up() -> None:
        identities.match(await read.lookup(sorted(emails), sorted(phones)))
        emails.clear()
        phones.clear()

    candidates = 0
    for n, row in enumerate(rows, 1):
        if n % SCAN_SLICE == 0:
            await read.tick()
        keys = None if row.problem else read.keys(row)
        if keys is None or not (
            (keys[0] and seen.twice(f"e:{keys[0]}")) or (keys[1] and seen.twice(f"p:{keys[1]}"))
        ):
            continue
        fields = read.validate(row)
        if fields is None or not (fields.get("email") or fields.get("phone")):
            continue
        email, phone = fields.get("email"), fields.get("phone")
        identities.add_row(email, phone)
        if email:
            emails.add(email)
        if phone:
            phones.add(phone)
        candidates += 1
        if candidates % RESOLVE_SLICE == 0:
            await read.tick()
        if len(emails) + len(phones) >= 2 * LOOKUP_ROWS:
            await look_up()
    if emails or phones:
        await look_up()
    identities.finish()
    return identities if identities.groups else None
