"""Our procrastinate apps and procrastinate's built-in blueprint: a process makes several apps (the
container's, the worker's), and none may rename or re-register the built-in tasks."""

from __future__ import annotations

import logging

import pytest
from procrastinate import builtin_tasks

from ghl_adapters.jobs.queue import procrastinate_app


def test_making_apps_leaves_the_builtin_blueprint_alone(caplog: pytest.LogCaptureFixture) -> None:
    before = sorted(builtin_tasks.builtin.tasks)
    with caplog.at_level(logging.INFO, logger="procrastinate"):
        apps = [procrastinate_app("postgresql+psycopg://ghl@127.0.0.1:5432/ghl") for _ in range(3)]
    assert sorted(builtin_tasks.builtin.tasks) == before
    assert [r for r in caplog.records if r.getMessage() == "Adding tasks from blueprint"] == []
    assert [name for app in apps for name in app.tasks if "builtin" in name] == []
