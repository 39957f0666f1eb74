"""State backend settings: checks, the split of secrets out of Terraform's files, AWX's file, lock errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.aigateway.ops.plugins.plugin_utils import _state_backend as engine

PASSWORD = "s3cr:et\\pw@/x"  # noqa: S105 (a test value with every character pgpass and URLs escape)


def test_pg_url_password_goes_to_pgpass_and_nowhere_else() -> None:
    conn_str = "postgres://terraform:s3cr%3Aet%5Cpw%40%2Fx@db.example:5433/tfstate?sslmode=verify-full"
    files = engine.backend_files("pg", {"conn_str": conn_str}, "prod-eu", "/w/.backend")

    assert files["errors"] == []
    assert files["pgpass"] == "*:*:*:*:s3cr\\:et\\\\pw@/x\n"
    assert PASSWORD not in files["backend_file"] and "s3cr" not in files["backend_file"]
    assert 'schema_name = "gateway_prod_eu"' in files["backend_file"]
    assert (
        "postgres://terraform@db.example:5433/tfstate?sslmode=verify-full&application_name=terraform+prod-eu+"
        in (files["backend_file"])
    )
    assert "host=db.example\nport=5433\ndbname=tfstate\nuser=terraform\nsslmode=verify-full\n" in files["pg_service"]
    assert files["description"] == "pg, schema gateway_prod_eu on db.example:5433/tfstate"


def test_pg_keyword_conn_str_and_an_explicit_schema() -> None:
    conn_str = f"host=/run/postgresql dbname=tfstate user=tf password='{PASSWORD.replace(chr(92), chr(92) * 2)}'"
    files = engine.backend_files("pg", {"conn_str": conn_str, "schema_name": "states"}, "dev", "/w")

    assert files["errors"] == []
    assert files["pgpass"] == "*:*:*:*:s3cr\\:et\\\\pw@/x\n"
    assert 'conn_str = "postgres://tf@/tfstate?' in files["backend_file"]
    assert "host=%2Frun%2Fpostgresql" in files["backend_file"]
    assert 'schema_name = "states"' in files["backend_file"]


def test_pg_without_a_password_writes_no_pgpass() -> None:
    files = engine.backend_files("pg", {"conn_str": "postgres://tf@db/tfstate"}, "dev", "/w")
    assert files["errors"] == [] and files["pgpass"] == ""


@pytest.mark.parametrize(
    ("backend", "config", "expected"),
    [
        ("local", {"conn_str": "x"}, "gateway_state_backend_config is for the pg and s3 backends"),
        ("pg", {}, "gateway_state_backend_config.conn_str is required for the pg backend"),
        ("pg", {"conn_str": f"mysql://u:{PASSWORD}@h/d"}, "must be a postgres:// URL or libpq keywords"),
        ("pg", {"conn_str": "postgres://u:pw@h:99999/d"}, "is not a valid postgres:// URL"),
        ("pg", {"conn_str": f"postgres://u:{PASSWORD}@h/d?sslmode=prefer"}, "takes sslmode disable, require"),
        ("pg", {"conn_str": "postgres://h/d", "schema_name": "Prod-State"}, "schema_name must be lowercase letters"),
        ("pg", {"conn_str": "postgres://h/d", "schema": "x"}, "gateway_state_backend_config.schema is not a pg"),
        ("pg", {"conn_str": "postgres://h/d", "skip_table_creation": "yes"}, "skip_table_creation must be true or"),
        ("s3", {"region": "eu-west-1"}, "gateway_state_backend_config.bucket is required for the s3 backend"),
        ("s3", {"bucket": "b", "region": "r", "secret_key": PASSWORD}, "access_key and secret_key go together"),
        ("s3", {"bucket": "b", "region": "r", "token": PASSWORD}, "token needs access_key and secret_key"),
        ("s3", {"bucket": "b", "region": "r", "access_key": "A", "secret_key": PASSWORD, "profile": "p"}, "not both"),
        ("s3", {"bucket": "b", "region": "r", "endpoints": "http://x"}, "endpoints must be a mapping"),
        ("gcs", {}, "gateway_state_backend must be one of local, pg, s3"),
    ],
)
def test_invalid_settings_are_named_without_their_values(backend: str, config: dict, expected: str) -> None:
    errors = engine.check(backend, config, "prod", None)
    assert any(expected in error for error in errors), errors
    assert all(error.startswith("environment 'prod': ") for error in errors)
    assert not any("s3cr" in error for error in errors)


def test_s3_keys_go_to_a_credentials_file_and_locking_defaults_to_the_lock_file() -> None:
    config = {
        "bucket": "state",
        "region": "eu-west-1",
        "access_key": "AKIAEXAMPLE",
        "secret_key": PASSWORD,
        "token": "session-token",
        "endpoints": {"s3": "http://127.0.0.1:9000"},
        "use_path_style": True,
    }
    files = engine.backend_files("s3", config, "prod", "/w/.backend", terraform_version="1.11.4")

    assert files["errors"] == []
    assert files["aws_credentials"] == (
        "[aigateway]\naws_access_key_id = AKIAEXAMPLE\n"
        f"aws_secret_access_key = {PASSWORD}\naws_session_token = session-token\n"
    )
    backend = files["backend_file"]
    assert "AKIAEXAMPLE" not in backend and "s3cr" not in backend and "session-token" not in backend
    assert engine.parse_backend_file(backend) == {
        "bucket": "state",
        "endpoints": {"s3": "http://127.0.0.1:9000"},
        "key": "aigateway/prod/terraform.tfstate",
        "profile": "aigateway",
        "region": "eu-west-1",
        "shared_credentials_files": ["/w/.backend/aws-credentials"],
        "use_lockfile": True,
        "use_path_style": True,
    }


def test_s3_on_terraform_before_1_10_needs_a_dynamodb_table() -> None:
    files = engine.backend_files("s3", {"bucket": "b", "region": "r"}, "dev", "/w", terraform_version="1.6.6")
    assert "set gateway_state_backend_config.dynamodb_table" in files["errors"][0]
    ok = engine.backend_files(
        "s3", {"bucket": "b", "region": "r", "dynamodb_table": "t"}, "dev", "/w", terraform_version="1.6.6"
    )
    assert ok["errors"] == [] and "use_lockfile" not in ok["backend_file"]


def test_the_awx_backend_file_is_read_and_the_inventory_wins(tmp_path: Path) -> None:
    credential = tmp_path / "backend.hcl"
    credential.write_text(
        '# written by AWX\nconn_str = "postgres://tf:pw@db/tfstate"\nschema_name = "from_file"\n'
        "skip_index_creation = true\n"
    )
    settings, errors = engine.merged_config("pg", {"schema_name": "from_inventory"}, str(credential))
    assert errors == []
    assert settings == {
        "conn_str": "postgres://tf:pw@db/tfstate",
        "schema_name": "from_inventory",
        "skip_index_creation": True,
    }
    assert engine.check("pg", {}, "dev", str(tmp_path / "missing.hcl"))[0].startswith(
        "environment 'dev': cannot read the backend configuration file named by TF_BACKEND_CONFIG_FILE"
    )
    credential.write_text('conn_str = "postgres://tf:pw@db/tfstate"\nthis is not hcl\n')
    assert "line 2 is not 'name = value'" in engine.check("pg", {}, "dev", str(credential))[0]


def test_backend_files_round_trip_through_the_parser() -> None:
    settings = {
        "bucket": 'a "quoted" ${name}',
        "max_retries": 3,
        "assume_role": {"role_arn": "arn:aws:iam::1:role/x", "external-id": "e"},
        "allowed_account_ids": ["1", "2"],
        "skip_s3_checksum": False,
    }
    text = engine.render_backend_file(settings)
    assert "$${name}" in text
    assert engine.parse_backend_file(text) == settings


LOCK_ERROR = """
Error: Error acquiring the state lock

Error message: resource temporarily unavailable
Lock Info:
  ID:        9d4b2c1e-0000-4e4e-8b8b-123456789abc
  Path:      /srv/state/prod/terraform.tfstate
  Operation: OperationTypeApply
  Who:       alice@workstation
  Version:   1.11.4
  Created:   2026-12-04 06:00:20.347841044 +0000 UTC
  Info:

Terraform acquires a state lock to protect the state from being written
"""


def test_a_lock_error_is_read_back() -> None:
    assert engine.lock_error(LOCK_ERROR) == {
        "locked": True,
        "id": "9d4b2c1e-0000-4e4e-8b8b-123456789abc",
        "who": "alice@workstation",
        "operation": "apply",
        "created": "2026-12-04 06:00:20.347841044 +0000 UTC",
        "path": "/srv/state/prod/terraform.tfstate",
        "reason": "resource temporarily unavailable",
    }
    assert engine.lock_error("Error: Saved plan is stale") == {"locked": False}
