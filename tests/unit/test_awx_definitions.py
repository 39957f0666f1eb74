"""The AWX definitions, checked without an AWX server.

The credential type is checked against AWX's rules and rendered the way AWX
injects it. playbooks/awx_configure.yml is templated by ansible-playbook
itself (each awx.awx task turned into a debug of its arguments), and every
task's arguments are validated against the real argument spec of the awx.awx
module it calls.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.aigateway.ops.plugins.module_utils._vault import ENVIRONMENT as VAULT_ENVIRONMENT

from tests.support.awx import (
    CREDENTIAL_TYPES_DIR,
    credential_type,
    documented_argument_spec,
    inject_credential,
    module_argument_spec,
)

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
PLAYBOOK = REPO / "playbooks" / "awx_configure.yml"

SETTINGS: dict[str, Any] = {
    "gateway_awx_scm_url": "https://git.example.com/platform/aigateway-ops.git",
    "gateway_awx_execution_environment_image": "registry.example.com/aigateway/ee:0.1.0",
    "gateway_awx_vault_url": "https://vault.example.com:8200",
    "gateway_awx_vault_role_id": "role-id-for-tests",
    "gateway_awx_vault_secret_id": "secret-id-for-tests",
    "gateway_awx_terraform_backend_config": 'conn_str = "postgres://state.example.com/terraform"\n',
    "gateway_awx_machine_credential": "Gateway hosts SSH",
    "gateway_awx_failure_notification": "Platform on-call",
}
PLAYBOOKS = ["deploy.yml", "playbooks/verify.yml", "playbooks/rotate.yml"]

# What AWX accepts in a custom credential type (awx/main/fields.py).
FIELD_KEYS = {
    "id",
    "label",
    "type",
    "secret",
    "multiline",
    "help_text",
    "format",
    "choices",
    "default",
    "ask_at_runtime",
}
FIELD_TYPES = {"string", "boolean"}
CONSTRAINT_KEYS = {"mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by"}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "CONTROLLER_", "TOWER_"))}
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    return env


def _definitions() -> list[tuple[str, dict[str, Any]]]:
    return [(path.stem, yaml.safe_load(path.read_text())) for path in sorted(CREDENTIAL_TYPES_DIR.glob("*.yml"))]


def _template_variables(template: str) -> set[str]:
    return jinja2.meta.find_undeclared_variables(jinja2.Environment(autoescape=True).parse(template))


# --- credential types ---------------------------------------------------------------------------------------


def test_the_vault_credential_type_exists() -> None:
    assert {name for name, _ in _definitions()} == {"vault"}


@pytest.mark.parametrize(("name", "definition"), _definitions(), ids=[name for name, _ in _definitions()])
def test_a_credential_type_is_what_awx_accepts(name: str, definition: dict[str, Any]) -> None:
    assert set(definition) == {"name", "description", "kind", "inputs", "injectors"}
    assert definition["kind"] in {"cloud", "net"}, "custom credential types are cloud or net"
    fields = definition["inputs"]["fields"]
    ids = [field["id"] for field in fields]
    assert len(ids) == len(set(ids)), f"{name}: duplicate field ids"
    for field in fields:
        assert set(field) <= FIELD_KEYS, f"{name}.{field['id']}: unknown keys {set(field) - FIELD_KEYS}"
        assert field["type"] in FIELD_TYPES
        assert field["label"] and field["help_text"]
    assert set(definition["inputs"].get("required", [])) <= set(ids)

    injectors = definition["injectors"]
    assert set(injectors) <= {"env", "file", "extra_vars"}
    file_ids = {label.split(".", 1)[1] for label in injectors.get("file", {}) if "." in label}
    for kind in ("env", "file", "extra_vars"):
        for key, template in injectors.get(kind, {}).items():
            unknown = _template_variables(template) - set(ids) - {"tower"}
            assert not unknown, f"{name}: {kind} {key} uses undefined inputs {unknown}"
            if "tower.filename." in template:
                used = template.split("tower.filename.", 1)[1].split()[0].rstrip("}%")
                assert used in file_ids, f"{name}: {key} names a file that no file injector writes"
    # AWX refuses to inject these names, and ANSIBLE_* would reconfigure the job.
    for key in injectors.get("env", {}):
        assert not key.startswith("ANSIBLE_") and key not in {"PATH", "PYTHONPATH", "VIRTUAL_ENV", "JOB_ID"}


@pytest.mark.parametrize(("name", "definition"), _definitions(), ids=[name for name, _ in _definitions()])
def test_secrets_are_marked_secret_and_never_injected_as_extra_variables(name: str, definition: dict[str, Any]) -> None:
    fields = {field["id"]: field for field in definition["inputs"]["fields"]}
    for secret in {"token", "secret_id", "api_key"} & set(fields):
        assert fields[secret].get("secret") is True, f"{name}.{secret} must be secret: AWX then masks it"
    secret_ids = {field_id for field_id, field in fields.items() if field.get("secret")}
    for key, template in definition["injectors"].get("extra_vars", {}).items():
        assert not _template_variables(template) & secret_ids, f"{name}: extra variable {key} carries a secret"


def test_a_token_credential_injects_the_standard_vault_environment(tmp_path: Path) -> None:
    env, extra_vars = inject_credential(
        credential_type("vault"), {"url": "https://vault.example.com:8200", "token": "hvs.token"}, tmp_path
    )
    assert env == {
        "VAULT_ADDR": "https://vault.example.com:8200",
        "VAULT_TOKEN": "hvs.token",
        "VAULT_ROLE_ID": "",
        "VAULT_SECRET_ID": "",
        "VAULT_NAMESPACE": "",
        "VAULT_CACERT": "",
    }
    assert extra_vars == {}


def test_an_approle_credential_with_a_ca_writes_the_ca_to_a_private_file(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    env, _ = inject_credential(
        credential_type("vault"),
        {"url": "https://vault:8200", "role_id": "r", "secret_id": "s", "vault_namespace": "team-a", "cacert": pem},
        tmp_path,
    )
    assert (env["VAULT_TOKEN"], env["VAULT_ROLE_ID"], env["VAULT_SECRET_ID"], env["VAULT_NAMESPACE"]) == (
        "",
        "r",
        "s",
        "team-a",
    )
    ca = Path(env["VAULT_CACERT"])
    assert ca.parent == tmp_path / "env"
    assert ca.read_text() == pem
    assert stat.S_IMODE(ca.stat().st_mode) == 0o600


def test_the_vault_credential_injects_only_variables_the_lookup_reads() -> None:
    injected = set(credential_type("vault")["injectors"]["env"])
    read = set(VAULT_ENVIRONMENT.values())
    assert injected <= read, f"the lookup does not read {injected - read}"
    assert {
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "VAULT_ROLE_ID",
        "VAULT_SECRET_ID",
        "VAULT_NAMESPACE",
        "VAULT_CACERT",
    } <= injected


# --- playbooks/awx_configure.yml ----------------------------------------------------------------------------


def test_awx_configure_passes_the_syntax_check() -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "--syntax-check", str(PLAYBOOK)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_awx_configure_refuses_to_start_without_its_settings(tmp_path: Path) -> None:
    env = _env() | {"CONTROLLER_HOST": "http://127.0.0.1:9", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), str(PLAYBOOK)], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "set gateway_awx_scm_url" in proc.stdout, proc.stdout + proc.stderr
    assert "Register the execution environment" not in proc.stdout


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Each awx.awx task of awx_configure.yml with its arguments as ansible-playbook templates them.

    The play is copied with every awx.awx task replaced by a debug of its
    arguments (same loop, same condition), so Ansible's own templating, loops,
    conditions and omit produce what the modules would receive.
    """
    root = tmp_path_factory.mktemp("awx-render")
    (root / "playbooks").mkdir()
    (root / "awx").symlink_to(REPO / "awx")
    play = yaml.safe_load(PLAYBOOK.read_text())[0]

    tasks: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for task in play["tasks"]:
        module = next((key for key in task if key.startswith("awx.awx.")), None)
        if module is None:
            tasks.append(task)
            continue
        index = len(calls)
        calls.append({"module": module.removeprefix("awx.awx."), "name": task["name"], "no_log": task.get("no_log")})
        copy = {key: value for key, value in task.items() if key in {"name", "loop", "loop_control", "when"}}
        copy["ansible.builtin.debug"] = {"msg": task[module]}
        copy["register"] = f"rendered_{index}"
        tasks.append(copy)
    output = root / "rendered.json"
    collected = "{{ [" + ", ".join(f"rendered_{i}" for i in range(len(calls))) + "] | to_json }}"
    tasks.append(
        {
            "name": "Write what each task would send",
            "ansible.builtin.copy": {"content": collected, "dest": str(output), "mode": "0600"},
        }
    )
    play["tasks"] = tasks
    (root / "playbooks" / "render.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    (root / "settings.json").write_text(json.dumps(SETTINGS))

    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "playbooks/render.yml", "-e", f"@{root / 'settings.json'}"],
        cwd=root,
        env=_env() | {"HOME": str(root)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    results = json.loads(output.read_text())
    for call, result in zip(calls, results, strict=True):
        if result.get("skipped"):
            call["runs"] = []
        elif "results" in result:
            call["runs"] = [item["msg"] for item in result["results"] if not item.get("skipped")]
        else:
            call["runs"] = [result["msg"]]
    return calls


def _runs(rendered: list[dict[str, Any]], module: str) -> list[dict[str, Any]]:
    return [args for call in rendered if call["module"] == module for args in call["runs"]]


@pytest.fixture(scope="module")
def awx_docs(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """ansible-doc's options of every awx.awx module the playbook calls."""
    modules = sorted({f"awx.awx.{call['module']}" for call in rendered})
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "--json", *modules], cwd=REPO, env=_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return {name.removeprefix("awx.awx."): doc["doc"]["options"] for name, doc in json.loads(proc.stdout).items()}


def test_every_awx_task_passes_its_modules_argument_validation(
    rendered: list[dict[str, Any]], awx_docs: dict[str, dict[str, Any]]
) -> None:
    checked = 0
    for call in rendered:
        # The module's own spec (what it enforces at run time) and its documented
        # one, which also describes nested options such as workflow nodes.
        spec = module_argument_spec(call["module"])
        validators = [
            ArgumentSpecValidator(spec["argument_spec"], **{key: spec[key] for key in CONSTRAINT_KEYS if key in spec}),
            ArgumentSpecValidator(documented_argument_spec(awx_docs[call["module"]])),
        ]
        for args in call["runs"]:
            for validator in validators:
                result = validator.validate(args)
                assert not result.error_messages, f"{call['name']} (awx.awx.{call['module']}): {result.error_messages}"
            checked += 1
    assert {call["module"] for call in rendered} >= {
        "execution_environment",
        "credential_type",
        "project",
        "inventory",
        "inventory_source",
        "credential",
        "job_template",
        "workflow_job_template",
        "schedule",
    }
    assert checked >= 12


def test_tasks_that_carry_secrets_are_no_log(rendered: list[dict[str, Any]]) -> None:
    secrets = [SETTINGS["gateway_awx_vault_secret_id"], SETTINGS["gateway_awx_terraform_backend_config"]]
    carrying = [call for call in rendered if any(s in json.dumps(call["runs"]) for s in secrets)]
    assert {call["module"] for call in carrying} == {"credential"}
    assert all(call["no_log"] is True for call in carrying)


def test_credential_types_are_sent_as_defined(rendered: list[dict[str, Any]]) -> None:
    sent = {args["name"]: args for args in _runs(rendered, "credential_type")}
    for _, definition in _definitions():
        args = sent[definition["name"]]
        assert (args["kind"], args["inputs"], args["injectors"]) == (
            definition["kind"],
            definition["inputs"],
            definition["injectors"],
        )


def test_the_vault_credential_uses_the_vault_type_and_the_backend_credential_awxs_own(
    rendered: list[dict[str, Any]],
) -> None:
    credentials = {args["credential_type"]: args for args in _runs(rendered, "credential")}
    vault = credentials[credential_type("vault")["name"]]
    assert set(vault["inputs"]) == {field["id"] for field in credential_type("vault")["inputs"]["fields"]}
    assert vault["inputs"]["role_id"] == SETTINGS["gateway_awx_vault_role_id"]
    backend = credentials["Terraform backend configuration"]
    assert backend["inputs"] == {"configuration": SETTINGS["gateway_awx_terraform_backend_config"]}


def _check_survey(survey: dict[str, Any]) -> None:
    # AWX's survey_spec validation: name, description, and a spec list of questions.
    assert {"name", "description", "spec"} <= set(survey)
    variables = [question["variable"] for question in survey["spec"]]
    assert len(variables) == len(set(variables))
    for question in survey["spec"]:
        assert {"question_name", "variable", "type", "required"} <= set(question)
        assert question["type"] in {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
        if question["type"] in {"multiplechoice", "multiselect"}:
            assert question["choices"] and question.get("default") in question["choices"]


def test_job_templates_run_the_collections_playbooks_with_an_environment_survey(
    rendered: list[dict[str, Any]],
) -> None:
    templates = {args["playbook"]: args for args in _runs(rendered, "job_template")}
    assert set(templates) == set(PLAYBOOKS)
    for args in templates.values():
        assert args["survey_enabled"] is True
        _check_survey(args["survey_spec"])
        question = args["survey_spec"]["spec"][0]
        assert question["variable"] == "gateway_target_environment"
        assert {"dev", "staging", "prod"} <= set(question["choices"])
        assert args["credentials"][0] == "AI gateway Vault"
        assert SETTINGS["gateway_awx_machine_credential"] in args["credentials"]
        assert args["project"] and args["inventory"] and args["execution_environment"]
    # Deploy and rotate can be launched as Check (plan only) or Run; verify only reads.
    assert templates["deploy.yml"]["ask_job_type_on_launch"] is True
    assert templates["playbooks/rotate.yml"]["ask_job_type_on_launch"] is True
    assert templates["playbooks/verify.yml"]["ask_job_type_on_launch"] is False
    assert "all" in templates["playbooks/verify.yml"]["survey_spec"]["spec"][0]["choices"]
    assert "all" not in templates["deploy.yml"]["survey_spec"]["spec"][0]["choices"]
    # Rotation can pin the candidate version, an optional whole number.
    (version,) = [
        q
        for q in templates["playbooks/rotate.yml"]["survey_spec"]["spec"]
        if q["variable"] != "gateway_target_environment"
    ]
    assert (version["variable"], version["type"], version["required"]) == ("gateway_rotate_version", "integer", False)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_each_job_templates_playbook_runs_only_on_the_surveyed_environment(playbook: str) -> None:
    """The survey answer, an extra variable, is the play's host pattern: AWX jobs cannot be given -l by a survey."""
    assert (REPO / playbook).is_file(), f"{playbook}, which a job template runs, is not in the project"
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "--list-hosts", playbook, "-e", "gateway_target_environment=staging"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hosts = {line.strip() for line in proc.stdout.splitlines() if line.startswith("      ")}
    assert hosts == {"staging-app-1", "staging-app-2"}, proc.stdout


def test_the_prod_workflow_plans_then_waits_for_approval_then_applies(rendered: list[dict[str, Any]]) -> None:
    (workflow,) = _runs(rendered, "workflow_job_template")
    deploy = next(args["name"] for args in _runs(rendered, "job_template") if args["playbook"] == "deploy.yml")
    nodes = {node["identifier"]: node for node in workflow["workflow_nodes"]}
    assert set(nodes) == {"plan", "approve", "apply"}

    plan, approve, apply = nodes["plan"], nodes["approve"], nodes["apply"]
    assert plan["unified_job_template"] == {"name": deploy, "type": "job_template", "organization": {"name": "Default"}}
    assert plan["job_type"] == "check"
    assert plan["related"]["success_nodes"] == [{"identifier": "approve"}]
    assert approve["unified_job_template"]["type"] == "workflow_approval"
    assert approve["unified_job_template"]["timeout"] > 0
    assert approve["related"]["success_nodes"] == [{"identifier": "apply"}]
    assert apply["unified_job_template"]["name"] == deploy
    assert apply["job_type"] == "run"
    assert "related" not in apply or not apply["related"].get("success_nodes")
    for node in (plan, apply):
        assert node["extra_data"] == {"gateway_target_environment": "prod"}


def test_verify_is_scheduled_for_every_environment(rendered: list[dict[str, Any]]) -> None:
    (schedule,) = _runs(rendered, "schedule")
    templates = _runs(rendered, "job_template")
    verify = next(args["name"] for args in templates if args["playbook"] == "playbooks/verify.yml")
    assert schedule["unified_job_template"] == verify
    assert schedule["rrule"].startswith("DTSTART") and "RRULE:FREQ=" in schedule["rrule"]
    assert schedule["extra_data"] == {"gateway_target_environment": "all"}
    assert schedule["enabled"] is True
    # Its failures (drift, a gateway that stopped answering) reach the notification template.
    by_playbook = {args["playbook"]: args for args in templates}
    assert by_playbook["playbooks/verify.yml"]["notification_templates_error"] == ["Platform on-call"]
    # Elsewhere none is set, so notifications attached in AWX by hand stay.
    assert "notification_templates_error" not in by_playbook["deploy.yml"]
    assert "credential" not in next(iter(_runs(rendered, "project")))  # omitted the same way
