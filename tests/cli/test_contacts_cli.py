"""`ghl contacts`: list, get, create, import (with an error report) and export, as an operator."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import pytest

from clitools import Env, env_for, invoke, invoke_json
from ghl_adapters.settings import Settings


@pytest.fixture(scope="session")
def cli_env(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Env:
    assert settings.database_url
    return env_for(settings, settings.database_url, tmp_path_factory.mktemp("cli-contacts"))


def new_location(env: Env) -> str:
    agency = invoke_json(env, "agencies", "create", f"Agency {uuid.uuid4().hex[:6]}")
    location = invoke_json(env, "locations", "create", "Main Street", "--agency", agency["id"])
    return str(location["id"])


def test_create_get_list(cli_env: Env) -> None:
    location = new_location(cli_env)
    made = invoke_json(
        cli_env,
        "contacts",
        "create",
        "--location",
        location,
        "--email",
        "A@Example.com",
        "--first-name",
        "Al",
    )
    assert made["email"] == "a@example.com"
    got = invoke_json(cli_env, "contacts", "get", made["id"], "--location", location)
    assert got["id"] == made["id"]
    listed = invoke_json(cli_env, "contacts", "list", "--location", location)
    assert [c["id"] for c in listed["items"]] == [made["id"]]
    other = new_location(cli_env)
    missing = invoke(cli_env, "contacts", "get", made["id"], "--location", other, "--json")
    assert missing.exit_code != 0
    assert invoke_json(cli_env, "contacts", "list", "--location", other)["items"] == []
    bad = invoke(cli_env, "contacts", "create", "--location", location, "--email", "nope", "--json")
    assert bad.exit_code != 0


def test_import_twice_then_export_round_trip(cli_env: Env, tmp_path: Path) -> None:
    location = new_location(cli_env)
    source = tmp_path / "people.csv"
    source.write_text(
        "\ufeffName;E-mail;Phone Number;Notes\n"
        "Ann Lee;ann@example.com;+1 312 555 0101;x\n"
        "Bob;bad-email;;\n"
        "\n"
        "Cy Doe;cy@example.com;;y\n",
        encoding="utf-8",
    )
    errors = tmp_path / "errors.csv"
    args = (
        "contacts",
        "import",
        str(source),
        "--location",
        location,
        "--map",
        "E-mail=email",
        "--tag",
        "Fair",
    )
    first = invoke_json(cli_env, *args, "--errors", str(errors))
    assert (first["status"], first["created"], first["failed"], first["skipped"]) == ("done", 2, 1, 0)
    assert list(csv.reader(errors.open())) == [["line", "reason"], ["3", first_reason(errors)]]
    again = invoke_json(cli_env, *args)
    assert (again["created"], again["updated"], again["skipped"], again["failed"]) == (0, 0, 2, 1)
    exported = tmp_path / "out.csv"
    written = invoke_json(cli_env, "contacts", "export", "--location", location, "--out", str(exported))
    assert written["rows"] == 2
    rows = list(csv.DictReader(exported.open(encoding="utf-8")))
    assert sorted(r["email"] for r in rows) == ["ann@example.com", "cy@example.com"]
    assert {r["tags"] for r in rows} == {"fair"}
    target = new_location(cli_env)
    copied = invoke_json(cli_env, "contacts", "import", str(exported), "--location", target)
    assert (copied["created"], copied["failed"]) == (2, 0)
    listed = invoke_json(cli_env, "contacts", "list", "--location", target)["items"]
    assert sorted((c["name"], c["phone"]) for c in listed) == [("Ann Lee", "+13125550101"), ("Cy Doe", None)]


def first_reason(errors: Path) -> str:
    reason = list(csv.reader(errors.open()))[1][1]
    assert reason.startswith("E-mail: is not a valid e-mail address")
    return reason


def test_export_writes_formulas_as_text_unless_raw_is_asked(cli_env: Env, tmp_path: Path) -> None:
    location = new_location(cli_env)
    formula = '=HYPERLINK("https://evil.example/","x")'
    source = tmp_path / "formulas.csv"
    source.write_text(f'email,company_name,@col\nf@example.com,"{formula.replace(chr(34), chr(34) * 2)}",x\n')
    invoke_json(cli_env, "contacts", "import", str(source), "--location", location)
    safe, raw = tmp_path / "safe.csv", tmp_path / "raw.csv"
    invoke_json(cli_env, "contacts", "export", "--location", location, "--out", str(safe))
    invoke_json(cli_env, "contacts", "export", "--location", location, "--out", str(raw), "--raw-formulas")
    (safe_row,) = csv.DictReader(safe.open(encoding="utf-8"))
    (raw_row,) = csv.DictReader(raw.open(encoding="utf-8"))
    assert (safe_row["company_name"], raw_row["company_name"]) == ("'" + formula, formula)
    bad = tmp_path / "bad.csv"
    bad.write_text("@evil,first_name\nnot-an-email,Ann\n")
    errors = tmp_path / "errors.csv"
    invoke_json(
        cli_env,
        "contacts",
        "import",
        str(bad),
        "--location",
        location,
        "--map",
        "@evil=email",
        "--errors",
        str(errors),
    )
    assert list(csv.reader(errors.open()))[1][1].startswith("'@evil: is not a valid e-mail address")


def test_import_reads_unicode_text_and_refuses_a_workbook_in_one_line(cli_env: Env, tmp_path: Path) -> None:
    location = new_location(cli_env)
    unicode_text = tmp_path / "people.txt"
    unicode_text.write_bytes(
        "Name\tEmail\nZoë Ångström\tzoe@example.com\n東 京\ttokyo@example.com\n".encode("utf-16")
    )
    done = invoke_json(cli_env, "contacts", "import", str(unicode_text), "--location", location)
    assert (done["status"], done["created"], done["failed"]) == ("done", 2, 0)
    listed = invoke_json(cli_env, "contacts", "list", "--location", location)["items"]
    assert sorted(c["name"] for c in listed) == ["Zoë Ångström", "東 京"]
    workbook = tmp_path / "people.xlsx"
    workbook.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(200))
    refused = invoke(cli_env, "contacts", "import", str(workbook), "--location", location, "--json")
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["error"]["code"] == "unreadable_file"
    plain = invoke(cli_env, "contacts", "import", str(workbook), "--location", location)
    assert plain.exit_code == 1
    assert "workbook" in plain.stderr
    assert "Traceback" not in plain.stderr + plain.stdout
