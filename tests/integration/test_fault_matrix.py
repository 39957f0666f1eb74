"""The fault matrix: each fault fails deploy.yml with a message naming its cause, and changes nothing deployed.

One baseline per module: environment ``dev`` (two hosts) deployed once against the shared OpenBao
and a sandbox API of this module's own. Each row of :data:`FAULTS` injects one fault, runs
deploy.yml again and compares, before and after:

- every byte of the hosts' files and of the Terraform state (and the state's serial and lineage);
- the versions of the environment's secret in Vault;
- that no Terraform state lock is left behind.

A row is an id, the words the run's output must contain, what it leaves intact (for docs/faults.md)
and an *injector*: a context manager that sets the fault up, yields how to run deploy.yml under it
(:class:`Attempt`), and takes the fault away again. To add a fault, write its injector and add a
row; ``test_docs_list_every_fault`` keeps docs/faults.md in step with this table.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fcntl
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import REPO, GatewayProject
from tests.support.openbao import OpenBao, free_port
from tests.support.sandbox import DEFAULT_MODELS, SandboxServer

pytestmark = pytest.mark.slow

ENVIRONMENT = "dev"
HOSTS = ["dev-1", "dev-2"]
FAULTS_DOC = REPO / "docs" / "faults.md"


@dataclass
class Baseline:
    """What the module deployed once, and the services it deployed with."""

    project: GatewayProject
    openbao: OpenBao
    sandbox: SandboxServer
    key: str
    vault_path: str


@dataclass
class FaultContext:
    """What an injector may use: the baseline and the test's own fixtures."""

    baseline: Baseline
    openbao_factory: Callable[..., OpenBao]
    sandbox_factory: Callable[..., SandboxServer]
    tmp_path: Path


@dataclass
class Attempt:
    """How to run deploy.yml under a fault."""

    project: GatewayProject
    extra_vars: dict[str, Any] = field(default_factory=dict)
    wrapper: list[str] = field(default_factory=list)


Injector = Callable[[FaultContext], contextlib.AbstractContextManager[Attempt]]


@dataclass(frozen=True)
class Fault:
    id: str
    what: str
    message: str  # a regular expression the run's output must match
    intact: str
    inject: Injector


# Injectors: Vault ---------------------------------------------------------------------------------


@contextlib.contextmanager
def vault_unreachable(ctx: FaultContext) -> Iterator[Attempt]:
    yield Attempt(dataclasses.replace(ctx.baseline.project, vault_addr=f"http://127.0.0.1:{free_port()}"))


@contextlib.contextmanager
def vault_sealed(ctx: FaultContext) -> Iterator[Attempt]:
    # A server of its own, with storage on disk and the same secret, sealed before the run.
    server = ctx.openbao_factory(mode="persistent")
    server.kv2_put(ctx.baseline.vault_path, {"api_key": ctx.baseline.key})
    server.seal()
    yield Attempt(dataclasses.replace(ctx.baseline.project, vault_addr=server.url, vault_token=server.root_token))


@contextlib.contextmanager
def vault_forbidden(ctx: FaultContext) -> Iterator[Attempt]:
    # The token may read a neighbouring path of the same mount, never the environment's secret.
    openbao = ctx.baseline.openbao
    policy = f"fault-forbidden-{uuid.uuid4().hex[:8]}"
    openbao.put_policy(policy, f'path "secret/data/{ctx.baseline.vault_path}-other" {{ capabilities = ["read"] }}')
    token = openbao.client().auth.token.create(policies=[policy], ttl="10m", no_default_policy=False)["auth"][
        "client_token"
    ]
    yield Attempt(dataclasses.replace(ctx.baseline.project, vault_token=token))


@contextlib.contextmanager
def vault_not_found(ctx: FaultContext) -> Iterator[Attempt]:
    yield Attempt(ctx.baseline.project, {"gateway_vault_path": ctx.baseline.vault_path + "-missing"})


@contextlib.contextmanager
def vault_missing_field(ctx: FaultContext) -> Iterator[Attempt]:
    yield Attempt(ctx.baseline.project, {"gateway_vault_field": "no_such_field"})


# Injectors: the AI API ----------------------------------------------------------------------------


def api_status(status: int) -> Injector:
    @contextlib.contextmanager
    def inject(ctx: FaultContext) -> Iterator[Attempt]:
        # Every request answers this status until the fault is lifted; Retry-After 0 keeps retries quick.
        ctx.baseline.sandbox.fail_next(status, count=None, retry_after=0)
        try:
            yield Attempt(ctx.baseline.project)
        finally:
            ctx.baseline.sandbox.configure(faults=[])

    return inject


@contextlib.contextmanager
def api_timeout(ctx: FaultContext) -> Iterator[Attempt]:
    ctx.baseline.sandbox.configure(hang=True, hang_seconds=10)
    try:
        yield Attempt(ctx.baseline.project, {"gateway_timeout_seconds": 1, "gateway_verify_retries": 0})
    finally:
        ctx.baseline.sandbox.configure(hang=False)


@contextlib.contextmanager
def api_tls_error(ctx: FaultContext) -> Iterator[Attempt]:
    # The same API over HTTPS, with a self-signed certificate nobody trusts.
    server = ctx.sandbox_factory({"models": list(DEFAULT_MODELS), "keys": [ctx.baseline.key]}, tls=True)
    yield Attempt(ctx.baseline.project, {"gateway_base_url": server.base_url})


@contextlib.contextmanager
def api_models_missing(ctx: FaultContext) -> Iterator[Attempt]:
    ctx.baseline.sandbox.configure(models=[model for model in DEFAULT_MODELS if model != "deepseek-v3.2"])
    try:
        yield Attempt(ctx.baseline.project)
    finally:
        ctx.baseline.sandbox.configure(models=list(DEFAULT_MODELS))


# Injectors: Terraform state and group variables ---------------------------------------------------


@contextlib.contextmanager
def state_locked(ctx: FaultContext) -> Iterator[Attempt]:
    # Terraform's local backend locks the state file with an fcntl write lock over the whole file;
    # holding the same lock is what a concurrent terraform run does.
    state_file = ctx.baseline.project.state_file(ENVIRONMENT)
    with state_file.open("rb+") as held:
        fcntl.lockf(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield Attempt(ctx.baseline.project, {"gateway_terraform_lock_timeout": 1})
        finally:
            fcntl.lockf(held, fcntl.LOCK_UN)


@contextlib.contextmanager
def state_dir_read_only(ctx: FaultContext) -> Iterator[Attempt]:
    # Root writes through any mode bits, so the state directory becomes a read-only bind mount, in
    # a mount namespace that only this run sees (nothing to undo, even if the test dies).
    state_dir = str(ctx.baseline.project.state_dir)
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", state_dir]
    yield Attempt(ctx.baseline.project, wrapper=wrapper)


def group_vars(**values: Any) -> Injector:
    @contextlib.contextmanager
    def inject(ctx: FaultContext) -> Iterator[Attempt]:
        project = ctx.baseline.project
        before = copy.deepcopy(project.settings.get(ENVIRONMENT))  # set() updates the dict in place
        project.set(ENVIRONMENT, **values)
        try:
            yield Attempt(project)
        finally:
            if before is None:
                del project.settings[ENVIRONMENT]
            else:
                project.settings[ENVIRONMENT] = before
            project.write_inventory()

    return inject


# The matrix ---------------------------------------------------------------------------------------

HOSTS_STATE_VAULT = "hosts' files, Terraform state (bytes, serial, lineage), Vault versions; no lock left"

FAULTS = [
    Fault(
        "vault-unreachable",
        "Vault unreachable (nothing listens)",
        r"cannot reach Vault at http://127\.0\.0\.1:\d+",
        HOSTS_STATE_VAULT,
        vault_unreachable,
    ),
    Fault("vault-sealed", "Vault sealed", r"Vault at \S+ is sealed", HOSTS_STATE_VAULT, vault_sealed),
    Fault(
        "vault-403",
        "Vault token's policy cannot read the secret (403)",
        r"permission denied: cannot read secret 'secret/fault-\w+/dev'",
        HOSTS_STATE_VAULT,
        vault_forbidden,
    ),
    Fault(
        "vault-404",
        "no secret at the Vault path (404)",
        r"secret not found: mount 'secret', path 'fault-\w+/dev-missing'",
        HOSTS_STATE_VAULT,
        vault_not_found,
    ),
    Fault(
        "vault-missing-field",
        "the secret has no such field",
        r"field 'no_such_field' not found in secret .*fields present: api_key",
        HOSTS_STATE_VAULT,
        vault_missing_field,
    ),
    Fault("api-401", "API answers 401", r"401 Unauthorized from http://\S+/models", HOSTS_STATE_VAULT, api_status(401)),
    Fault("api-403", "API answers 403", r"403 Forbidden from http://\S+/models", HOSTS_STATE_VAULT, api_status(403)),
    Fault("api-404", "API answers 404", r"404 Not Found from http://\S+/models", HOSTS_STATE_VAULT, api_status(404)),
    Fault(
        "api-429",
        "API answers 429",
        r"429 Too Many Requests from http://\S+/models.*gave up after 3 attempts",
        HOSTS_STATE_VAULT,
        api_status(429),
    ),
    Fault(
        "api-500",
        "API answers 500",
        r"500 Internal Server Error from http://\S+/models.*gave up after 3 attempts",
        HOSTS_STATE_VAULT,
        api_status(500),
    ),
    Fault(
        "api-timeout",
        "API does not answer in time",
        r"no answer from http://\S+/models within 1 s",
        HOSTS_STATE_VAULT,
        api_timeout,
    ),
    Fault(
        "api-tls",
        "API certificate not trusted",
        r"TLS certificate of https://\S+/models could not be verified",
        HOSTS_STATE_VAULT,
        api_tls_error,
    ),
    Fault(
        "api-models-missing",
        "an allowed model missing from /models",
        r"models missing from http://\S+/models: deepseek-v3\.2",
        HOSTS_STATE_VAULT,
        api_models_missing,
    ),
    Fault(
        "state-locked",
        "Terraform state locked by another run",
        r"Error acquiring the state lock|the state of environment 'dev' is locked",
        HOSTS_STATE_VAULT,
        state_locked,
    ),
    Fault(
        "state-dir-read-only",
        "state directory not writable",
        r"read-only file system",
        HOSTS_STATE_VAULT,
        state_dir_read_only,
    ),
    Fault(
        "vars-unknown-fallback",
        "fallback to a model that is not allowed",
        r"Unknown models: gpt-5",
        HOSTS_STATE_VAULT,
        group_vars(gateway_fallback_models={"gpt-4.1": "gpt-5"}),
    ),
    Fault(
        "vars-self-fallback",
        "a model that falls back to itself",
        r"invalid settings for environment 'dev': model \"gpt-4.1\" falls back to itself",
        HOSTS_STATE_VAULT,
        group_vars(gateway_fallback_models={"gpt-4.1": "gpt-4.1"}),
    ),
    Fault(
        "vars-bad-backend",
        "a pg state backend without its connection string",
        r"invalid state backend settings: .*conn_str",
        HOSTS_STATE_VAULT,
        group_vars(gateway_state_backend="pg", gateway_state_backend_config={}),
    ),
    Fault(
        "vars-negative-rate-limit",
        "negative rate limit",
        r"rate limits, timeout and alert threshold must be whole numbers >= 1",
        HOSTS_STATE_VAULT,
        group_vars(gateway_rate_limit_rpm=-5),
    ),
    Fault(
        "vars-bad-environment",
        "environment name with capitals and '_'",
        r"invalid settings for environment 'Dev_1'",
        HOSTS_STATE_VAULT,
        group_vars(gateway_environment="Dev_1"),
    ),
    Fault(
        "vars-malformed-url",
        "base URL that is not a URL",
        r"gateway_base_url must be an http\(s\) URL",
        HOSTS_STATE_VAULT,
        group_vars(gateway_base_url="htp:/api example"),
    ),
]


# Fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, openbao: OpenBao) -> Iterator[Baseline]:
    """dev on two hosts, deployed once; every test of the module compares against it."""
    key = f"sk-fault-{uuid.uuid4().hex}"
    prefix = f"fault-{uuid.uuid4().hex[:8]}"
    vault_path = f"{prefix}/{ENVIRONMENT}"
    openbao.kv2_put(vault_path, {"api_key": key})
    sandbox = SandboxServer({"models": list(DEFAULT_MODELS), "keys": [key]})
    sandbox.start()
    project = GatewayProject(
        root=tmp_path_factory.mktemp("fault-matrix"),
        vault_addr=openbao.url,
        vault_token=openbao.root_token,
        base_url=sandbox.base_url,
        environments={ENVIRONMENT: HOSTS},
        common={"gateway_vault_path": prefix + "/{{ gateway_environment }}"},
    )
    project.write_inventory()
    try:
        first = project.playbook()
        assert first.returncode == 0, first.explain()
        yield Baseline(project, openbao, sandbox, key, vault_path)
    finally:
        sandbox.stop()


def deployed(baseline: Baseline) -> dict[str, Any]:
    """Everything a failed run must leave as it was."""
    project = baseline.project
    state = project.state(ENVIRONMENT)
    metadata = baseline.openbao.client().secrets.kv.v2.read_secret_metadata(baseline.vault_path)["data"]
    return {
        "files": project.snapshot(),
        "serial": state["serial"],
        "lineage": state["lineage"],
        "vault": {"current_version": metadata["current_version"], "versions": metadata["versions"]},
    }


# Tests --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.id for fault in FAULTS])
def test_fault_fails_naming_its_cause_and_changes_nothing(
    fault: Fault, baseline: Baseline, openbao_factory, sandbox_factory, tmp_path: Path
) -> None:
    before = deployed(baseline)
    assert before["files"], "the baseline deployed nothing"

    with fault.inject(FaultContext(baseline, openbao_factory, sandbox_factory, tmp_path)) as attempt:
        run = attempt.project.playbook(extra_vars=attempt.extra_vars, wrapper=attempt.wrapper)

    assert run.returncode != 0, run.explain()
    found = re.search(fault.message, run.output, re.DOTALL)
    assert found, f"no /{fault.message}/ in the output\n{run.explain()}"
    # The line that says it, for docs/faults.md (pytest -s shows it).
    start = run.output.rfind("\n", 0, found.start()) + 1
    print(f"\n{fault.id}: {run.output[start : run.output.find(chr(10), found.end())].strip()}")
    after = deployed(baseline)
    assert after["serial"] == before["serial"] and after["lineage"] == before["lineage"]
    assert after["vault"] == before["vault"]
    assert after["files"].keys() == before["files"].keys()
    changed = [name for name in before["files"] if after["files"][name] != before["files"][name]]
    assert changed == [], f"{fault.id} changed {changed}"
    assert list(baseline.project.state_dir.rglob("*.lock.info")) == [], "a state lock was left behind"
    # The hosts did not even get as far as a changed task.
    assert all(host["changed"] == 0 for host in run.recap().values()), run.explain()


def test_after_every_fault_a_clean_run_changes_nothing(baseline: Baseline) -> None:
    before = deployed(baseline)
    run = baseline.project.playbook()
    assert run.returncode == 0, run.explain()
    assert run.total_changed() == 0, run.explain()
    assert deployed(baseline) == before


def test_docs_list_every_fault() -> None:
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|", FAULTS_DOC.read_text(), re.MULTILINE)
    assert rows == [fault.id for fault in FAULTS]
