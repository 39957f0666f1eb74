#!/usr/bin/python
# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The work is done on the controller by the action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: state_backend
short_description: Check the Terraform binary and prepare an environment's state backend on the controller
version_added: 0.1.0
description:
  - Runs on the controller, whatever host the task is for.
  - Checks that O(terraform) is Terraform or OpenTofu 1.6 or later, and creates the shared provider plugin cache.
  - For the C(pg) and C(s3) backends, checks O(config), writes the backend configuration file for
    C(terraform init -backend-config=<file>) and the clients' secret files into O(directory) (mode 0700, files
    0600), and runs C(terraform init -reconfigure) in O(root_dir), which also creates the pg backend's schema and
    table. A PostgreSQL password goes to a pgpass file (C(PGPASSFILE)), S3 access keys to a shared credentials
    file. Terraform copies its backend configuration into C(.terraform/terraform.tfstate) and into every saved
    plan, so the configuration it receives holds no secret.
  - With O(state=absent), removes O(directory) and everything in it.
author:
  - aigateway.ops maintainers (@aigateway)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Planning needs the backend, so check mode prepares it too; it changes no state.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  state:
    description: V(present) prepares the backend, V(absent) removes O(directory).
    type: str
    choices: [present, absent]
    default: present
  directory:
    description: Private directory for the backend's settings files, removed with O(state=absent).
    type: path
    required: true
  terraform:
    description: Path of the C(terraform) or C(tofu) binary.
    type: path
  root_dir:
    description: The environment's Terraform root, where C(terraform init) runs.
    type: path
  backend:
    description: The state backend.
    type: str
    choices: [local, pg, s3]
    default: local
  config:
    description: The backend's settings, as for the gateway role's C(gateway_state_backend_config).
    type: dict
    default: {}
  environment_name:
    description: Name of the environment, for the defaults (schema, key) and messages.
    type: str
  credential_file:
    description: A backend configuration file whose settings apply under O(config), as AWX's C(TF_BACKEND_CONFIG_FILE).
    type: path
  plugin_cache_dir:
    description: Provider plugin cache directory to create.
    type: path
  terraform_environment:
    description: Environment variables for Terraform. They must hold no secret.
    type: dict
    default: {}
notes:
  - No value of O(config) appears in a message or a return value; Terraform's own error lines are shown with any
    secret setting replaced by C(***).
"""

EXAMPLES = r"""
- name: Prepare prod's PostgreSQL state backend (the password goes to a pgpass file, never to Terraform)
  aigateway.ops.state_backend:
    terraform: /usr/local/bin/terraform
    root_dir: /srv/gateway/work/prod
    directory: /srv/gateway/work/prod/.backend
    backend: pg
    config:
      conn_str: postgres://terraform:{{ pg_password }}@db.example.com/tfstate
    environment_name: prod
  no_log: true

- name: Remove the backend's settings files after the run
  aigateway.ops.state_backend:
    directory: /srv/gateway/work/prod/.backend
    state: absent
"""

RETURN = r"""
terraform_version:
  description: Version of O(terraform).
  returned: state=present
  type: str
description:
  description: The backend in words, without secrets, such as C(pg, schema gateway_prod on db:5432/tfstate).
  returned: state=present
  type: str
pgpass_file:
  description: The pgpass file to name in C(PGPASSFILE), or an empty string.
  returned: state=present
  type: str
"""
