# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters for an environment's Terraform state backend.

``state_backend_errors``: every problem with the backend settings, each naming the setting and the
rule, never a value. ``state_backend_files``: the files that carry the settings to Terraform, the
secret ones split out (see the engine in plugin_utils/_state_backend.py). ``state_lock``: the lock
holder Terraform reported when it could not take a state lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.aigateway.ops.plugins.plugin_utils import _state_backend as engine


def state_backend_errors(backend: Any, config: Any, environment: Any, credential_file: Any = None) -> list[str]:
    return engine.check(str(backend), _plain(config), str(environment), _path(credential_file))


def state_backend_files(
    backend: Any,
    config: Any,
    environment: Any,
    directory: Any,
    credential_file: Any = None,
    terraform_version: Any = "",
) -> dict[str, Any]:
    return engine.backend_files(
        str(backend),
        _plain(config),
        str(environment),
        str(directory),
        credential_file=_path(credential_file),
        terraform_version=str(terraform_version or ""),
    )


def state_lock(text: Any) -> dict[str, Any]:
    return engine.lock_error(str(text or ""))


def _path(value: Any) -> str | None:
    return str(value) if value else None


def _plain(value: Any) -> dict[str, Any]:
    """Plain Python values: ansible-core hands plugins tagged strings."""
    if value is None or value == "":
        return {}
    if not isinstance(value, Mapping):
        raise AnsibleFilterError("gateway_state_backend_config must be a mapping of backend settings")
    return {str(key): _value(item) for key, item in value.items()}


def _value(value: Any) -> Any:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_value(item) for item in value]
    return value


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "state_backend_errors": state_backend_errors,
            "state_backend_files": state_backend_files,
            "state_lock": state_lock,
        }
