"""The event types a subscription may take, named as GoHighLevel integrators know them, and the domain
events behind each. Several domain events may share one public type (a tag added or removed is a
ContactTagUpdate)."""

from __future__ import annotations

# public type -> (what it means, the domain event types delivered under it)
EVENT_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ContactCreate": ("A contact was created", ("contact.created",)),
    "ContactUpdate": ("A contact's fields changed (other than tags and DND)", ("contact.updated",)),
    "ContactDelete": ("A contact was deleted", ("contact.deleted",)),
    "ContactRestore": ("A deleted contact was restored", ("contact.restored",)),
    "ContactTagUpdate": (
        "Tags were added to or removed from a contact",
        ("contact.tag_added", "contact.tag_removed"),
    ),
    "ContactDndUpdate": ("A contact's do-not-disturb settings changed", ("contact.dnd_changed",)),
    "ContactMerge": ("Two contacts were merged (data is the surviving contact)", ("contact.merged",)),
    "ContactErase": ("A contact's personal data was erased", ("contact.erased",)),
    "NoteCreate": ("A note was added to a contact", ("note.created",)),
    "NoteUpdate": ("A note changed", ("note.updated",)),
    "NoteDelete": ("A note was deleted", ("note.deleted",)),
    "TaskCreate": ("A task was added to a contact", ("task.created",)),
    "TaskUpdate": ("A task changed", ("task.updated",)),
    "TaskComplete": ("A task was completed", ("task.completed",)),
    "TaskDelete": ("A task was deleted", ("task.deleted",)),
    "OpportunityCreate": ("An opportunity was created", ("opportunity.created",)),
    "OpportunityUpdate": ("An opportunity's other fields changed", ("opportunity.updated",)),
    "OpportunityDelete": ("An opportunity was deleted", ("opportunity.deleted",)),
    "OpportunityStageUpdate": ("An opportunity moved to another stage", ("opportunity.stage_changed",)),
    "OpportunityStatusUpdate": (
        "An opportunity was won, lost, abandoned or reopened",
        ("opportunity.status_changed",),
    ),
    "OpportunityMonetaryValueUpdate": ("An opportunity's value changed", ("opportunity.value_changed",)),
    "OpportunityAssignedToUpdate": ("An opportunity was assigned to another user", ("opportunity.assigned",)),
}

_PUBLIC_OF: dict[str, str] = {
    internal: public for public, (_, internals) in EVENT_TYPES.items() for internal in internals
}


def public_type(domain_type: str) -> str | None:
    """The subscribable type a domain event is delivered as; None when no subscription can take it.
    A domain event already named as the public type maps to itself."""
    if domain_type in EVENT_TYPES:
        return domain_type
    return _PUBLIC_OF.get(domain_type)


def describe() -> list[tuple[str, str]]:
    return [(name, meaning) for name, (meaning, _) in EVENT_TYPES.items()]
