#!/usr/bin/python
# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_files
short_description: Write a directory's files from their content, in one module run
version_added: 0.2.0
description:
  - Creates O(path) if it is missing and writes each file of O(files) and O(secret_files) into it, replacing a file
    only when its content differs, then sets its mode, owner and group. Each file is written to a temporary file
    in O(path) and renamed over the old one, so a reader never sees half a file.
  - Does in one module run what a directory task and one C(ansible.builtin.copy) per file would do in several,
    which is what a host pays for each file at scale.
  - The content of O(secret_files) never appears in a result, a diff or a log; for those files the module only
    says whether they changed.
author:
  - aigateway.ops maintainers (@aigateway)
requirements:
  - Python standard library on the managed host; nothing to install.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports which files would change, with their diffs, and writes nothing.
  diff_mode:
    support: full
    details: A diff per changed file of O(files) and per changed mode, owner or group; none for O(secret_files).
  platform:
    platforms: posix
options:
  path:
    description: The directory that holds the files.
    type: path
    required: true
  files:
    description: File names (plain names, no C(/)) in O(path), each with its content. Shown in diffs.
    type: dict
    default: {}
  secret_files:
    description: Like O(files), for content that must never be shown, such as credentials.
    type: dict
    default: {}
  mode:
    description: Mode of every file written.
    type: raw
    default: "0644"
  directory_mode:
    description: Mode of O(path) when this module creates it; an existing directory keeps its own.
    type: raw
    default: "0755"
  owner:
    description: Owner of every file, and of O(path) when this module creates it; the connection user's when unset.
    type: str
  group:
    description: Group of every file, and of O(path) when this module creates it; the connection user's when unset.
    type: str
notes:
  - Put credentials in O(secret_files) and set C(no_log) on the task too, so that nothing else in it is logged.
seealso:
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Write the gateway configuration
  aigateway.ops.gateway_files:
    path: /etc/ai-gateway
    files:
      gateway.json: "{{ gateway_config | to_nice_json }}\n"
      rate-limits.json: "{{ rate_limits | to_nice_json }}\n"

- name: Write the gateway credentials
  aigateway.ops.gateway_files:
    path: /etc/ai-gateway
    mode: "0600"
    secret_files:
      credentials.env: "AI_GATEWAY_API_KEY={{ api_key }}\n"
  no_log: true
"""

RETURN = r"""
changed_files:
  description: Names of the files whose content, mode, owner or group changed (or would, in check mode).
  returned: success
  type: list
  elements: str
  sample: [rate-limits.json]
created:
  description: Whether O(path) was (or would be) created.
  returned: success
  type: bool
"""

# Ansible modules keep their documentation first, so the imports follow it.
import os
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            files=dict(type="dict", default={}),
            secret_files=dict(type="dict", default={}, no_log=True),
            mode=dict(type="raw", default="0644"),
            directory_mode=dict(type="raw", default="0755"),
            owner=dict(type="str"),
            group=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    directory = params["path"]
    shown, secret = params["files"], params["secret_files"]
    bad = sorted(name for name in [*shown, *secret] if not _plain_name(name))
    if bad:
        module.fail_json(msg=f"file names must be plain names inside {directory}, not {', '.join(bad)}")
    both = sorted(set(shown) & set(secret))
    if both:
        module.fail_json(msg=f"{', '.join(both)} cannot be in both files and secret_files")

    diffs: list[dict[str, Any]] = []
    created = _ensure_directory(module, directory, diffs)
    changed_files = []
    for name, content in [*shown.items(), *secret.items()]:
        if _write_file(module, os.path.join(directory, name), to_text(content), name in secret, diffs):
            changed_files.append(name)

    result: dict[str, Any] = dict(changed=bool(created or changed_files), changed_files=changed_files, created=created)
    if module._diff and diffs:
        result["diff"] = diffs
    module.exit_json(**result)


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _attributes(module: AnsibleModule, path: str, mode: Any) -> dict[str, Any]:
    return {
        "path": path,
        "mode": mode,
        "owner": module.params["owner"],
        "group": module.params["group"],
        # SELinux contexts are left to the policy's defaults for the directory.
        "secontext": [None, None, None, None],
        "attributes": None,
    }


def _ensure_directory(module: AnsibleModule, directory: str, diffs: list[dict[str, Any]]) -> bool:
    """Create the directory if missing; True when it was (or would be) created."""
    if os.path.isdir(directory):
        return False
    if os.path.lexists(directory):
        module.fail_json(msg=f"{directory} exists and is not a directory")
    diffs.append({"before": {"path": directory, "state": "absent"}, "after": {"path": directory, "state": "directory"}})
    if not module.check_mode:
        try:
            os.makedirs(directory)
        except OSError as exc:
            module.fail_json(msg=f"cannot create {directory}: {exc.strerror}")
        module.set_fs_attributes_if_different(_attributes(module, directory, module.params["directory_mode"]), True)
    return True


def _write_file(module: AnsibleModule, path: str, content: str, secret: bool, diffs: list[dict[str, Any]]) -> bool:
    """Write the file when its content differs, then its attributes; True when anything changed."""
    new = to_bytes(content)
    try:
        with open(path, "rb") as handle:
            old: bytes | None = handle.read()
    except FileNotFoundError:
        old = None
    except OSError as exc:
        module.fail_json(msg=f"cannot read {path}: {exc.strerror}")

    content_changed = old != new
    if content_changed:
        if secret:
            diffs.append({"before_header": path, "after_header": path, "prepared": "[content hidden: secret file]"})
        else:
            diffs.append(
                {
                    "before_header": path if old is not None else "/dev/null",
                    "after_header": path,
                    "before": to_text(old or b""),
                    "after": content,
                }
            )
        if not module.check_mode:
            _replace(module, path, new)

    attribute_diff: dict[str, Any] = {"before": {}, "after": {}}
    # In check mode a file that does not exist yet has no attributes to compare.
    if module.check_mode and old is None:
        return True
    attributes_changed = module.set_fs_attributes_if_different(
        _attributes(module, path, module.params["mode"]), False, diff=attribute_diff
    )
    if attributes_changed and attribute_diff["before"]:
        diffs.append({**attribute_diff, "before_header": path, "after_header": path})
    return content_changed or attributes_changed


def _replace(module: AnsibleModule, path: str, content: bytes) -> None:
    """Write a temporary file beside the old one, give it its attributes, then rename it over the old one."""
    directory, name = os.path.split(path)
    temporary = None
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        # The file has its mode and owner before it has its name: a secret is never readable by others.
        module.set_fs_attributes_if_different(_attributes(module, temporary, module.params["mode"]), False)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None and os.path.lexists(temporary):
            os.unlink(temporary)
        module.fail_json(msg=f"cannot write {path}: {exc.strerror}")


if __name__ == "__main__":
    main()
