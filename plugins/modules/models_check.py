#!/usr/bin/python
# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: models_check
short_description: Check that an OpenAI-compatible API accepts a key, lists the expected models, lets it use them
version_added: 0.1.0
description:
  - Sends C(GET {base_url}/models) with O(api_key) as a Bearer token, from the host the task runs on.
  - Passes when the API answers 200 with a model list that contains every model in O(expected_models)
    (or exactly those, with O(match=exact)), within O(latency_threshold_ms) when that is set.
  - Fails with a message that names the cause and the URL - the provider's own words for 401, 403, 404,
    429 and 5xx answers, a timeout, a TLS or certificate error, a refused connection, a body that is not
    a model list, or the models that are missing.
  - "With O(probe_models=true), also calls each expected model that C(/models) lists once, with
    C(POST {base_url}/chat/completions) and C(max_tokens: 1), because a model the list shows is not always
    one the key may call. A 401 there fails the check as a rejected key; a 403 or 404 for a listed model fails
    it as a model the key may not call, naming the model. RV(cause) tells the two apart."
  - Estimates what each probe cost from the token usage the API returns and O(prices).
  - Connection errors, timeouts, 429 and 5xx answers are retried; 401, 403 and 404 are not.
  - Never changes anything, so it reports C(changed=false) and runs the same way in check mode.
author:
  - aigateway.ops maintainers (@aigateway)
requirements:
  - Python standard library on the managed host; nothing to install.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The check only reads, so check mode runs it unchanged and reports the real result.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  base_url:
    description:
      - Root of the OpenAI-compatible API, including its version path, for example V(https://api.holysheep.ai/v1).
      - The module requests C(/models) under it.
    type: str
    required: true
  api_key:
    description:
      - "The API key, sent as C(Authorization: Bearer ...) and never returned or shown in a message."
      - Anything in an answer that contains the key, or a long piece of it, is replaced by C(***).
    type: str
    required: true
  expected_models:
    description:
      - Model ids the API must list for this key.
    type: list
    elements: str
    default: []
  match:
    description:
      - V(subset) passes when every model in O(expected_models) is listed; other listed models are fine.
      - V(exact) also fails when the API lists a model that is not in O(expected_models).
    type: str
    choices: [subset, exact]
    default: subset
  timeout:
    description:
      - Seconds to wait for the connection and for each read, per attempt.
    type: float
    default: 10
  retries:
    description:
      - How many more attempts after the first, for connection errors, timeouts, 429 and 5xx answers.
      - V(0) disables retries. 401, 403 and 404 answers are never retried.
    type: int
    default: 2
  retry_delay:
    description:
      - Seconds before the first retry; the wait doubles for each further retry, up to 30 seconds.
      - A 429 answer's C(Retry-After) header replaces this wait, up to 60 seconds.
    type: float
    default: 1
  latency_threshold_ms:
    description:
      - When set, a successful answer that took longer than this many milliseconds fails the check,
        with a message giving the measured latency and the threshold.
      - The latency is that of the successful attempt, from sending the request to reading the whole body.
    type: int
  validate_certs:
    description:
      - Verify the API's TLS certificate. Turn off only for a test endpoint.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of CA certificates to trust instead of the host's default ones.
    type: path
  probe_models:
    description:
      - "Call each model of O(expected_models) that C(/models) lists with a minimal chat completion
        (C(max_tokens: 1)) and fail when the key may not use it."
      - Each probe is a real, billed call, of a few tokens; RV(cost_usd) estimates the total.
      - Probes follow O(timeout), O(retries) and O(retry_delay) as the C(/models) request does; O(latency_threshold_ms)
        applies to C(/models) only.
    type: bool
    default: false
    version_added: 0.2.0
  prices:
    description:
      - Price per million tokens in US dollars, per model, used for the probes' cost estimate (input and
        output tokens alike). A model without a price gets no estimate.
      - "The default: V(gpt-4.1) 8, V(claude-sonnet-4-20250514) 15, V(gemini-2.5-flash) 2.50, V(deepseek-v3.2) 0.42."
    type: dict
    version_added: 0.2.0
notes:
  - The key reaches the module as a module argument, which Ansible marks C(no_log), so it is not logged
    by Ansible and never travels through the task's C(environment).
  - With the default O(match=subset) the API may list more models than O(expected_models); only missing
    ones fail the check.
  - The request honours the usual C(https_proxy) and C(no_proxy) environment variables of the host.
  - O(probe_models) runs in check mode too, because a probe changes nothing; but it is a billed call.
  - The cost estimate uses one price for input and output tokens; providers that price them apart are
    approximated. It is an estimate of the probes only, not of the gateway's traffic.
seealso:
  - plugin: aigateway.ops.vault_kv
    plugin_type: lookup
    description: Read the API key from HashiCorp Vault or OpenBao.
  - module: ansible.builtin.uri
  - name: OpenAI API reference, list models
    description: The endpoint this module calls, as OpenAI-compatible gateways implement it.
    link: https://platform.openai.com/docs/api-reference/models/list
"""

EXAMPLES = r"""
# gateway_api_key holds the key read from Vault with the aigateway.ops.vault_kv lookup.
- name: Prove the gateway key works and lists the environment's models
  aigateway.ops.models_check:
    base_url: "{{ gateway_base_url }}"
    api_key: "{{ gateway_api_key }}"
    expected_models: "{{ gateway_allowed_models }}"
    latency_threshold_ms: "{{ gateway_alert_threshold_ms }}"

- name: Require exactly these models, trusting an internal CA, and give a slow link more time
  aigateway.ops.models_check:
    base_url: https://llm-gateway.internal.example.com/v1
    api_key: "{{ gateway_api_key }}"
    expected_models:
      - gpt-4.1
      - deepseek-v3.2
    match: exact
    ca_path: /etc/pki/tls/certs/internal-ca.pem
    timeout: 30
    retries: 4

- name: Prove the key may call every allowed model, not only list it, and report what that cost
  aigateway.ops.models_check:
    base_url: "{{ gateway_base_url }}"
    api_key: "{{ gateway_api_key }}"
    expected_models: "{{ gateway_allowed_models }}"
    probe_models: true
    prices:
      gpt-4.1: 8
      deepseek-v3.2: 0.42
  register: models_result

- name: Record the result without failing the play
  aigateway.ops.models_check:
    base_url: "{{ gateway_base_url }}"
    api_key: "{{ gateway_api_key }}"
    expected_models: "{{ gateway_allowed_models }}"
  register: models_result
  ignore_errors: true
"""

RETURN = r"""
status:
  description: HTTP status of the last answer; V(null) when no answer arrived (timeout, TLS or connection error).
  returned: always
  type: int
  sample: 200
models:
  description: Model ids the API listed for the key; empty when the list could not be read.
  returned: always
  type: list
  elements: str
  sample: [gpt-4.1, claude-sonnet-4-20250514, gemini-2.5-flash, deepseek-v3.2]
missing:
  description: Models in O(expected_models) that the API did not list.
  returned: always
  type: list
  elements: str
  sample: [deepseek-v3.2]
unexpected:
  description: With O(match=exact), listed models that are not in O(expected_models); otherwise empty.
  returned: always
  type: list
  elements: str
  sample: []
latency_ms:
  description: Milliseconds the successful attempt took; V(null) when no attempt succeeded.
  returned: always
  type: int
  sample: 84
attempts:
  description: Requests sent, retries included.
  returned: always
  type: int
  sample: 1
url:
  description: The URL requested, C({base_url}/models).
  returned: always
  type: str
  sample: https://api.holysheep.ai/v1/models
cause:
  description:
    - Why the check failed, in one word; V(null) when it passed.
    - V(key_rejected) (401, from C(/models) or a probe), V(model_not_permitted) (a listed model refused a probe
      with 403 or 404), V(forbidden), V(not_found), V(rate_limited), V(server_error), V(http_error),
      V(unreachable) (timeout, TLS or connection error), V(bad_answer), V(models_missing), V(unexpected_models),
      V(too_slow).
  returned: always
  type: str
  sample: model_not_permitted
  version_added: 0.2.0
refused:
  description: Listed models whose probe answered 403 or 404, the models the key may not call.
  returned: always
  type: list
  elements: str
  sample: [gpt-4.1]
  version_added: 0.2.0
probes:
  description: One entry per probe, in the order of O(expected_models); empty without O(probe_models).
  returned: always
  type: list
  elements: dict
  version_added: 0.2.0
  contains:
    model:
      description: The model called.
      type: str
      sample: deepseek-v3.2
    status:
      description: HTTP status of the last answer; V(null) when none arrived.
      type: int
      sample: 200
    permitted:
      description: V(true) when the call succeeded, V(false) on 401, 403 or 404, V(null) when it could not tell.
      type: bool
    latency_ms:
      description: Milliseconds the successful attempt took.
      type: int
    attempts:
      description: Requests sent for this probe, retries included.
      type: int
    prompt_tokens:
      description: Input tokens the API reported.
      type: int
    completion_tokens:
      description: Output tokens the API reported.
      type: int
    total_tokens:
      description: Tokens the API reported in all.
      type: int
    price_per_million_usd:
      description: The price from O(prices) used for the estimate; V(null) when the model has none.
      type: float
    cost_usd:
      description: Estimated cost of the call in US dollars; V(null) without a price or usage.
      type: float
      sample: 0.0000034
    error:
      description: The failure message for this probe; V(null) when it succeeded.
      type: str
cost_usd:
  description: Estimated cost of all probes in US dollars; V(null) when no probe ran.
  returned: always
  type: float
  sample: 0.0000412
  version_added: 0.2.0
"""

# Ansible modules keep their documentation first, so the imports follow it.
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.aigateway.ops.plugins.module_utils._models_api import check_models


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            base_url=dict(type="str", required=True),
            api_key=dict(type="str", required=True, no_log=True),
            expected_models=dict(type="list", elements="str", default=[]),
            match=dict(type="str", choices=["subset", "exact"], default="subset"),
            timeout=dict(type="float", default=10),
            retries=dict(type="int", default=2),
            retry_delay=dict(type="float", default=1),
            latency_threshold_ms=dict(type="int"),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            probe_models=dict(type="bool", default=False),
            prices=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for name, minimum in (("timeout", 0.001), ("retries", 0), ("retry_delay", 0), ("latency_threshold_ms", 0)):
        if params[name] is not None and params[name] < minimum:
            module.fail_json(msg=f"{name} must be at least {minimum:g}, got {params[name]:g}", changed=False)

    prices = None
    if params["prices"] is not None:
        prices = {}
        for model, price in params["prices"].items():
            try:
                prices[str(model)] = float(price)
            except (TypeError, ValueError):
                module.fail_json(msg=f"prices: the price of {model} must be a number of dollars per million tokens")
            if prices[str(model)] < 0:
                module.fail_json(msg=f"prices: the price of {model} must be at least 0, got {price}")

    # Option values may arrive as tagged string subclasses; headers and URLs want plain str.
    result, failure = check_models(
        str(params["base_url"]),
        str(params["api_key"]),
        expected_models=[str(model) for model in params["expected_models"]],
        match=str(params["match"]),
        latency_threshold_ms=params["latency_threshold_ms"],
        timeout=float(params["timeout"]),
        retries=int(params["retries"]),
        retry_delay=float(params["retry_delay"]),
        validate_certs=bool(params["validate_certs"]),
        ca_path=None if params["ca_path"] is None else str(params["ca_path"]),
        probe=bool(params["probe_models"]),
        prices=prices,
    )
    if failure is not None:
        module.fail_json(msg=failure, changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
