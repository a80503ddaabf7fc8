"""`ghl jobs` as an operator: stats, listings with the last error, one job, retry by hand."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from clitools import Env, env_for, invoke, invoke_json, libpq
from ghl_adapters.settings import Settings


@pytest.fixture(scope="session")
def cli_env(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Env:
    assert settings.database_url
    return env_for(settings, settings.database_url, tmp_path_factory.mktemp("cli-jobs"))


def generic(job_id: int) -> str:
    return f"the job stopped on an internal error (error id {job_id}-3); your operator has the detail"


def failed_job(env: Env, kind: str, detail: str) -> int:
    """A job as a worker leaves it after its last attempt failed: the error its location admin reads,
    and the detail for operators."""
    url = env["DATABASE_URL"]
    assert url
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, status, attempts, args) "
            "VALUES ('test', %s, 'failed', 3, %s) RETURNING id",
            (kind, json.dumps({"tag": uuid.uuid4().hex})),
        ).fetchone()
        assert row
        conn.execute(
            "INSERT INTO job_errors (job_id, kind, attempt, error, detail) VALUES (%s, %s, 3, %s, %s)",
            (row[0], kind, generic(row[0]), detail),
        )
        return int(row[0])


def test_failed_jobs_are_listed_shown_and_retried(cli_env: Env) -> None:
    kind = f"test.cli{uuid.uuid4().hex[:6]}"
    job_id = failed_job(cli_env, kind, "RuntimeError: the receiver was down")

    listed = invoke_json(cli_env, "jobs", "failed", "--kind", kind)
    (item,) = listed["items"]
    assert (item["id"], item["status"], item["detail"], item["error"]) == (
        job_id,
        "failed",
        "RuntimeError: the receiver was down",
        generic(job_id),
    )

    shown = invoke_json(cli_env, "jobs", "show", str(job_id))
    assert shown["kind"] == kind
    assert shown["attempts"] == 3
    assert shown["detail"] == "RuntimeError: the receiver was down"

    stats = invoke_json(cli_env, "jobs", "stats")
    assert {"queue": "test", "status": "failed"}.items() <= next(
        s for s in stats["items"] if s["queue"] == "test" and s["status"] == "failed"
    ).items()

    retried = invoke_json(cli_env, "jobs", "retry", str(job_id))
    assert (retried["status"], retried["attempts"]) == ("todo", 4)
    assert invoke_json(cli_env, "jobs", "failed", "--kind", kind)["items"] == []
    assert [
        j["id"] for j in invoke_json(cli_env, "jobs", "list", "--kind", kind, "--status", "todo")["items"]
    ] == [job_id]

    # Only a failed job is retried; an unknown one is not found.
    again = invoke(cli_env, "jobs", "retry", str(job_id), "--json")
    assert again.exit_code != 0
    assert "only failed jobs are retried" in again.stdout + again.stderr
    missing = invoke(cli_env, "jobs", "show", "999999999", "--json")
    assert missing.exit_code != 0


def test_an_unknown_status_is_refused(cli_env: Env) -> None:
    result = invoke(cli_env, "jobs", "list", "--status", "sleeping", "--json")
    assert result.exit_code != 0
    assert "must be one of" in result.stdout + result.stderr


def test_recover_reports_what_it_put_back(cli_env: Env) -> None:
    assert invoke_json(cli_env, "jobs", "recover") == {"recovered": 0}


def test_human_output_is_a_table_with_the_detail_operators_may_see(cli_env: Env) -> None:
    kind = f"test.cli{uuid.uuid4().hex[:6]}"
    failed_job(cli_env, kind, "ValueError: bad")
    result = invoke(cli_env, "jobs", "failed", "--kind", kind)
    assert result.exit_code == 0, result.stderr
    assert "Failed jobs" in result.stdout
    assert "ValueError: bad" in result.stdout
    assert "internal error" not in result.stdout
