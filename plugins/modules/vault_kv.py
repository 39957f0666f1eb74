#!/usr/bin/python
# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vault_kv
short_description: Write a secret to a HashiCorp Vault or OpenBao KV engine, idempotently
version_added: 0.2.0
description:
  - With O(state=present), writes O(data) as the secret's content (or merges it in, with O(merge)), as a new version
    on KV v2, only when that changes something. A second run with the same data changes nothing.
  - KV v2 writes use check-and-set on the version that was read, so a concurrent writer makes the task fail instead of
    being overwritten.
  - With O(state=read), reports the secret's version, creation time and field names without changing anything. It
    never returns a value; read values with the P(aigateway.ops.vault_kv#lookup) lookup.
  - The same engine, connection options, environment variables and error messages as the lookup. The module logs in
    once per task and revokes the token it obtained by login when it ends.
author:
  - aigateway.ops maintainers (@aigateway)
requirements:
  - hvac >= 2.3 (Python library, where the module runs; usually the controller, with C(delegate_to=localhost))
options:
  path:
    description:
      - Path of the secret inside O(mount), without the mount and, for KV v2, without C(data/).
    type: str
    required: true
  state:
    description:
      - V(present) makes the secret hold O(data).
      - V(read) only reports the secret's metadata and field names.
    type: str
    choices: [present, read]
    default: present
  data:
    description:
      - The fields of the secret, for O(state=present). Required then.
      - Never logged, never returned, and masked in the diff.
    type: dict
  merge:
    description:
      - V(true) keeps the fields of the current version that O(data) does not name (a partial update).
      - V(false) makes O(data) the whole content.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - aigateway.ops.vault_connection
attributes:
  check_mode:
    support: full
    details: Reads the current version and reports whether a write would happen, and the version it would create.
  diff_mode:
    support: full
    details: Shows the field names before and after, each value masked as C((hidden)), C((hidden, changed)) or
      C((hidden, added)).
  platform:
    platforms: posix
notes:
  - Every credential option and O(data) are C(no_log). The module builds no message that contains a value. Set
    C(diff) to V(false) anyway on a task that writes a secret, as the other modules that write one need it.
  - A lookup that read the same secret earlier in the run keeps the value it read (the run cache of the lookup). Read
    the new version with O(aigateway.ops.vault_kv#lookup:run_cache=false) or by pinning
    O(aigateway.ops.vault_kv#lookup:version).
  - A write reads the current version first, so the token's policy needs the C(read) capability as well as C(create)
    and C(update) on the secret's API path (C(<mount>/data/<path>) on KV v2).
seealso:
  - plugin: aigateway.ops.vault_kv
    plugin_type: lookup
    description: Reads secrets, with one login and one read per secret per run.
"""

EXAMPLES = r"""
- name: Store a new API key as a new version (nothing changes if it is already the current one)
  aigateway.ops.vault_kv:
    path: ai-gateway/prod
    data:
      api_key: "{{ new_api_key }}"
    merge: true
  delegate_to: localhost
  diff: false
  register: stored

- name: Show which version now holds the key
  ansible.builtin.debug:
    msg: "ai-gateway/prod is at version {{ stored.version }} (was {{ stored.previous_version }})"

- name: Write with AppRole to a KV v1 mount in a namespace
  aigateway.ops.vault_kv:
    path: ai-gateway/staging
    mount: kv
    namespace: platform
    data:
      api_key: "{{ staging_api_key }}"
    auth_method: approle
    role_id: "{{ vault_role_id }}"
    secret_id: "{{ vault_secret_id }}"
  delegate_to: localhost
  diff: false

- name: How old is the current key, and which fields does it have
  aigateway.ops.vault_kv:
    path: ai-gateway/prod
    state: read
  delegate_to: localhost
  register: current
"""

RETURN = r"""
mount:
  description: The KV mount.
  returned: always
  type: str
  sample: secret
path:
  description: The secret's path inside the mount.
  returned: always
  type: str
  sample: ai-gateway/prod
kv_version:
  description: The KV engine version of the mount, 1 or 2.
  returned: always
  type: int
  sample: 2
version:
  description:
    - KV v2 version after the task; in check mode, the version a write would create. C(null) on KV v1.
  returned: always
  type: int
  sample: 7
previous_version:
  description: KV v2 version before the task (C(null) when the secret did not exist, or on KV v1).
  returned: when O(state=present)
  type: int
  sample: 6
created_time:
  description: Creation time of the current KV v2 version.
  returned: when O(state=read)
  type: str
  sample: "2026-01-01T10:00:00.000000Z"
fields:
  description: Names of the secret's fields, never their values.
  returned: always
  type: list
  elements: str
  sample: [api_key]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.aigateway.ops.plugins.module_utils import _vault

_DEFAULTS: dict[str, Any] = {
    "mount": _vault.DEFAULT_MOUNT,
    "kubernetes_token_path": _vault.DEFAULT_KUBERNETES_TOKEN_PATH,
    "login_token_ttl": _vault.DEFAULT_LOGIN_TOKEN_TTL,
    "timeout": _vault.DEFAULT_TIMEOUT,
    "retries": _vault.DEFAULT_RETRIES,
    "retry_max_seconds": _vault.DEFAULT_RETRY_MAX_SECONDS,
}
_CHOICES: dict[str, list[Any]] = {"auth_method": list(_vault.AUTH_METHODS), "kv_version": [1, 2]}


def argument_spec() -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = {}
    for name, kind in _vault.CONNECTION_OPTIONS.items():
        option: dict[str, Any] = {"type": kind, "no_log": name in _vault.SECRET_OPTIONS}
        if name in _DEFAULTS:
            option["default"] = _DEFAULTS[name]
        if name in _CHOICES:
            option["choices"] = _CHOICES[name]
        spec[name] = option
    spec.update(
        path={"type": "str", "required": True},
        state={"type": "str", "choices": ["present", "read"], "default": "present"},
        data={"type": "dict", "no_log": True},
        merge={"type": "bool", "default": False},
    )
    return spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_if=[("state", "present", ("data",))],
    )
    if _vault.HVAC_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("hvac"), exception=None)

    params = module.params
    try:
        connection, login = _vault.settings_from_options(params)
        kv = _vault.plain_int(params["kv_version"], "kv_version")
        mount = _vault.plain_text(params["mount"]) or _vault.DEFAULT_MOUNT
        if params["state"] == "read":
            secret = _vault.read_secret(connection, login, params["path"], mount=mount, kv=kv, warn=module.warn)
            module.exit_json(
                changed=False,
                mount=secret.mount,
                path=secret.path,
                kv_version=secret.kv_version,
                version=secret.version,
                created_time=secret.created_time,
                fields=secret.fields,
            )
        result = _vault.write_secret(
            connection,
            login,
            params["path"],
            params["data"],
            mount=mount,
            merge=params["merge"],
            kv=kv,
            check_mode=module.check_mode,
            warn=module.warn,
        )
    except _vault.VaultError as error:
        # The engine's messages never hold a value, a token or a credential.
        module.fail_json(msg=error.message, kind=error.kind, attempts=error.attempts)

    output: dict[str, Any] = {
        "changed": result.changed,
        "mount": result.mount,
        "path": result.path,
        "kv_version": result.kv_version,
        "version": result.version,
        "previous_version": result.previous_version,
        "fields": result.fields,
    }
    if module._diff:
        output["diff"] = result.diff
    module.exit_json(**output)


if __name__ == "__main__":
    main()
