#!/usr/bin/python
# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The work is done on the controller by the action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: terraform_root
short_description: Write an environment's Terraform root on the controller
version_added: 0.2.0
description:
  - Runs on the controller, whatever host the task is for, in the process that runs the task. No module is sent
    to a host and no interpreter starts, so writing a root costs milliseconds rather than a module run per file.
  - Creates O(path) and the O(directories) (mode 0700) and writes each of O(files) into O(path) (mode 0600),
    replacing a file only when its content differs. A file is written to a temporary name and renamed over the
    old one, so Terraform never reads half a file.
author:
  - aigateway.ops maintainers (@aigateway)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be created or replaced, and writes nothing.
  diff_mode:
    support: full
    details: One diff per file whose content changes.
  platform:
    platforms: posix
options:
  path:
    description: The root directory, an absolute path on the controller.
    type: path
    required: true
  files:
    description: File names (plain names, no C(/)) in O(path), each with its content.
    type: dict
    default: {}
  directories:
    description: Further directories to create, such as the directory of the root's local state.
    type: list
    elements: path
    default: []
notes:
  - The files are shown in diffs and kept readable on the controller, so they must hold no secret. The gateway
    role writes its key's Vault version and fingerprint into the root, never the key.
seealso:
  - module: aigateway.ops.state_backend
"""

EXAMPLES = r"""
- name: Write prod's Terraform root
  aigateway.ops.terraform_root:
    path: /srv/gateway/work/prod
    directories:
      - /srv/gateway/state/prod
    files:
      main.tf: "{{ lookup('ansible.builtin.template', 'main.tf.j2') }}"
      terraform.tfvars.json: "{{ gateway_terraform_inputs | to_nice_json(sort_keys=true) }}\n"
  register: prod_root
"""

RETURN = r"""
changed_files:
  description: Names of the files in O(files) whose content was (or, in check mode, would be) replaced.
  returned: success
  type: list
  elements: str
  sample: [terraform.tfvars.json]
created_directories:
  description: Directories that were (or would be) created.
  returned: success
  type: list
  elements: str
  sample: [/srv/gateway/state/prod]
"""
