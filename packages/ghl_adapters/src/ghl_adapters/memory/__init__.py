"""The in-memory adapter set: every repository of the core, a unit of work with transaction semantics, a
job queue that runs jobs inline or on demand, and `build_memory_container()` (container.py). For embedders
and the fast test tier: no database, no Redis. Imports the core and the standard library only."""

from __future__ import annotations

from .contact_imports import MemoryNewContactEncoder
from .queue import MemoryJobQueue
from .store import MemoryStore
from .uow import MemoryUnitOfWork, MemoryUnitOfWorkFactory

__all__ = [
    "MemoryJobQueue",
    "MemoryNewContactEncoder",
    "MemoryStore",
    "MemoryUnitOfWork",
    "MemoryUnitOfWorkFactory",
]
