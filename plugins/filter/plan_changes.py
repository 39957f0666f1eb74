# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.aigateway.ops.plugins.plugin_utils._plan_summary import summarise


def plan_changes(plan: Any) -> dict[str, Any]:
    if not isinstance(plan, dict):
        raise AnsibleFilterError("plan_changes expects the JSON of 'terraform show -json <plan file>', as a dict")
    return summarise(plan)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"plan_changes": plan_changes}
