# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: vault_kv
short_description: Read a secret from a HashiCorp Vault or OpenBao KV engine
version_added: 0.1.0
description:
  - Reads one KV secret per term, from a KV v2 or KV v1 engine, and returns one of its fields, all of its
    data, its version, or its metadata.
  - The engine's version is read from the mount when O(kv_version) is not given.
  - The connection and the credentials come from the options, else from the standard Vault client
    environment (E(VAULT_ADDR), E(VAULT_TOKEN), E(VAULT_ROLE_ID) and E(VAULT_SECRET_ID), E(VAULT_NAMESPACE),
    E(VAULT_CACERT), E(VAULT_CLIENT_CERT), E(VAULT_CLIENT_KEY), E(VAULT_SKIP_VERIFY)), else from C(~/.vault-token).
    That is what AWX credentials inject.
  - One login and one read per distinct secret for a whole C(ansible-playbook) run, however many hosts template
    the lookup and however often. The first lookup of a run starts a small cache agent for that run (see O(run_cache)),
    which later lookups ask; a token the agent obtained by logging in is revoked when the run ends.
  - Connection errors, 412, 429 and 5xx answers are retried with exponential backoff, within O(retry_max_seconds)
    in all; 400, 401, 403 and 404 answers never are. Each retry prints a warning naming the URL, never a value.
  - A failure names the operation, the Vault address and the path, and what to check - unreachable, TLS, sealed,
    login rejected, permission denied (with the capability the policy needs), not found (with mount, KV version
    and the API path), or a missing field (with the names of the fields that exist, never their values).
author:
  - aigateway.ops maintainers (@aigateway)
requirements:
  - hvac >= 2.3 (Python library, on the controller)
options:
  _terms:
    description:
      - Paths of secrets inside O(mount), without the mount and, for KV v2, without C(data/).
    type: list
    elements: str
    required: true
  field:
    description:
      - Field of the secret to return. Without it, the whole data of the secret is returned.
      - A missing field fails the lookup, listing the field names that exist.
    type: str
  version:
    description:
      - KV v2 version to read instead of the newest, to pin a key or roll back to an earlier one.
    type: int
  return_format:
    description:
      - V(value) returns O(field), or the whole data without O(field).
      - V(data) returns the whole data.
      - V(version) returns the KV v2 version number (C(null) for KV v1).
      - V(metadata) returns C(version), C(created_time), C(deletion_time) and C(destroyed).
      - V(full) returns C(value) (as V(value) does), C(version), C(created_time) and C(fields), the field names.
    type: str
    choices: [value, data, version, metadata, full]
    default: value
  run_cache:
    description:
      - Share logins and reads across the whole C(ansible-playbook) run through the run's cache agent, a process
        that holds them in memory only, listens on a unix socket in a directory only the same user may enter
        (C(aigateway-vault-<uid>) in the temporary directory), and exits when the run ends.
      - V(false) reads in the worker process itself, with a login per task; use it to read a secret again after
        writing it in the same run (or pin O(version)).
    type: bool
    default: true
    env:
      - name: AIGATEWAY_VAULT_RUN_CACHE
    version_added: 0.2.0
notes:
  - The plugin builds no message, warning or debug line that contains a secret value, a token or a credential, at any
    verbosity. The value it returns is a secret, however; use it in tasks that set C(no_log), never pass it
    through a task's C(environment), and set C(diff) to V(false) on tasks that write it.
  - Ansible runs every task of every host in a worker process of its own. The first lookup of a run forks a cache
    agent keyed by the run's main process; later workers ask it over a unix socket, so a variable such as
    C(gateway_api_key) templated in C(group_vars) for fifty hosts costs one login and one read of the secret. The
    agent keeps the token and the secrets in memory only, never on disk, and serves only the same user, presenting
    the same credentials.
  - A token obtained by login (approle, userpass, jwt, kubernetes) is revoked (C(auth/token/revoke-self)) when the
    run's C(ansible-playbook) process ends, or after 15 minutes without a lookup. In case the revocation cannot
    happen (the machine loses power, Vault is unreachable at that moment), the token is also shortened to
    O(login_token_ttl) when it is renewable. A token given to the plugin (O(token), E(VAULT_TOKEN),
    C(~/.vault-token)) is never revoked.
  - Reads are cached for the run. A playbook that writes a secret (with the M(aigateway.ops.vault_kv) module) and
    reads it again later in the same run sets O(run_cache=false) or pins O(version) for that read.
  - Where the agent cannot be reached or started, the lookup warns and reads in the worker process.
extends_documentation_fragment:
  - aigateway.ops.vault_connection
seealso:
  - module: aigateway.ops.vault_kv
    description: Writes a new version of a secret, idempotently, with check mode and a masked diff.
  - module: aigateway.ops.models_check
  - name: Vault access in aigateway.ops
    description: Auth methods, the one-login design, TLS, errors and what is tested (docs/vault.md in the collection).
    link: https://github.com/aigateway/ops/blob/main/docs/vault.md
  - name: KV secrets engine, version 2
    description: The API this plugin reads.
    link: https://openbao.org/api-docs/secret/kv/kv-v2/
"""

EXAMPLES = r"""
- name: Read the API key of the prod gateway (VAULT_ADDR and VAULT_TOKEN from the environment)
  ansible.builtin.set_fact:
    gateway_api_key: "{{ lookup('aigateway.ops.vault_kv', 'ai-gateway/prod', field='api_key') }}"
  no_log: true

- name: Log in with AppRole (as in CI) and read a pinned version of the key from a KV v2 mount named kv
  ansible.builtin.set_fact:
    gateway_api_key: >-
      {{ lookup('aigateway.ops.vault_kv', 'ai-gateway/prod', mount='kv', field='api_key', version=6,
                auth_method='approle', role_id=vault_role_id, secret_id=vault_secret_id) }}
  no_log: true

- name: Log in with a JWT (an OIDC token from the CI system) to a namespace
  ansible.builtin.set_fact:
    gateway_secret: >-
      {{ lookup('aigateway.ops.vault_kv', 'ai-gateway/prod', field='api_key', return_format='full',
                auth_method='jwt', role='deployer', jwt_file='/run/ci/id_token', namespace='platform') }}
  no_log: true

- name: Log in with the token in ~/.vault-token (after `vault login` or `bao login` on a laptop)
  ansible.builtin.set_fact:
    gateway_api_key: "{{ lookup('aigateway.ops.vault_kv', 'ai-gateway/prod', field='api_key', auth_method='token') }}"
  no_log: true

- name: Log in with userpass, on an auth mount with another name
  ansible.builtin.set_fact:
    gateway_api_key: >-
      {{ lookup('aigateway.ops.vault_kv', 'ai-gateway/prod', field='api_key', auth_method='userpass',
                auth_mount_point='people', username='deployer', password=vault_password) }}
  no_log: true

- name: Log in with the pod's service account token (AWX on Kubernetes)
  ansible.builtin.set_fact:
    gateway_api_key: >-
      {{ lookup('aigateway.ops.vault_kv', 'ai-gateway/prod', field='api_key', auth_method='kubernetes', role='awx') }}
  no_log: true

- name: Log in to the parent namespace, read from a child namespace
  ansible.builtin.set_fact:
    gateway_api_key: >-
      {{ lookup('aigateway.ops.vault_kv', 'gateway/prod', field='api_key', namespace='team/app',
                auth_namespace='team', auth_method='approle') }}
  no_log: true

# In group_vars: fifty hosts templating this cost one login and one read per run.
# gateway_api_key: "{{ lookup('aigateway.ops.vault_kv', 'ai-gateway/' ~ gateway_environment, field='api_key') }}"

- name: Show the key's version and age, never the key
  ansible.builtin.debug:
    msg: "{{ lookup('aigateway.ops.vault_kv', 'ai-gateway/prod', return_format='metadata') }}"

- name: Read again a secret this run wrote, bypassing the run cache
  ansible.builtin.set_fact:
    gateway_api_key: "{{ lookup('aigateway.ops.vault_kv', 'ai-gateway/prod', field='api_key', run_cache=false) }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description:
    - One item per term, shaped by O(return_format).
  type: list
  elements: raw
"""

from typing import Any

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display
from ansible_collections.aigateway.ops.plugins.module_utils import _vault
from ansible_collections.aigateway.ops.plugins.plugin_utils import _vault_run_cache

display = Display()

_READ_OPTIONS = ("field", "version", "return_format", "run_cache")


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        if _vault.HVAC_IMPORT_ERROR is not None:
            raise AnsibleError(
                "the aigateway.ops.vault_kv lookup needs the Python library hvac on the controller: pip install hvac"
            )
        self.set_options(var_options=variables, direct=kwargs)
        options = {name: self.get_option(name) for name in (*_vault.CONNECTION_OPTIONS, *_READ_OPTIONS)}

        try:
            connection, login = _vault.settings_from_options(options)
            return_format = _vault.plain_text(options["return_format"]) or "value"
            field_name = _vault.plain_text(options["field"])
            version = _vault.plain_int(options["version"], "version")
            kv = _vault.plain_int(options["kv_version"], "kv_version")
            shared = _vault.plain_bool(options["run_cache"], "run_cache") is not False
            read = _vault_run_cache.read_secret if shared else _vault.read_secret
            results = []
            for term in terms:
                secret = read(
                    connection,
                    login,
                    _vault.normalise_path(term),
                    mount=_vault.plain_text(options["mount"]) or _vault.DEFAULT_MOUNT,
                    version=version,
                    kv=kv,
                    warn=display.warning,
                )
                results.append(secret.shaped(return_format, field_name))
        except _vault.VaultError as error:
            # The engine's messages never hold a value, a token or a credential.
            raise AnsibleLookupError(error.message) from None
        except Exception as error:  # noqa: BLE001 - an unforeseen failure must not print a secret either
            raise AnsibleLookupError(
                f"reading from Vault failed unexpectedly ({type(error).__name__}); run again with the url, "
                "namespace and credentials checked, and report it if it persists"
            ) from None
        return results
