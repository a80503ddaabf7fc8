"""Text PostgreSQL cannot store is refused as bad input, every NUL with its pointer."""

from __future__ import annotations

from ghl_core.shared.untrusted import nul_errors


def test_every_nul_is_found_with_its_pointer() -> None:
    document = {
        "name": "fine",
        "steps": [{"id": "a", "body": "x\x00y"}, {"id": "b", "tags": ["ok", "\x00"]}],
        "bad\x00key": 1,
        "a/b": {"c~d": "\x00"},
        "number": 3,
    }
    assert [(e.pointer, e.detail) for e in nul_errors(document)] == [
        ("/steps/0/body", "must not contain NUL characters"),
        ("/steps/1/tags/1", "must not contain NUL characters"),
        ("/bad\x00key", "names must not contain NUL characters"),
        ("/a~1b/c~0d", "must not contain NUL characters"),
    ]
    assert nul_errors({"name": "clean", "steps": [{"id": "a"}]}) == []
    assert [e.pointer for e in nul_errors("\x00")] == ["/"]
