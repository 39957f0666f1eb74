# Valid inputs: what the module renders, planned without a network.

variables {
  environment         = "prod"
  allowed_models      = ["gpt-4.1", "claude-sonnet-4-20250514", "gemini-2.5-flash", "deepseek-v3.2"]
  api_key_version     = 7
  api_key_fingerprint = "0123456789abcdef"
  rate_limit_rpm      = 100
  model_rate_limits = {
    "gpt-4.1"                  = 30
    "claude-sonnet-4-20250514" = 25
  }
  fallback_models = {
    "gpt-4.1" = "deepseek-v3.2"
  }
  enable_caching     = false
  timeout_seconds    = 45
  max_retries        = 5
  alert_threshold_ms = 800
  tags = {
    Project = "AI-API-Gateway"
  }
}

run "full_configuration" {
  command = plan

  assert {
    condition     = output.gateway_config.environment == "prod"
    error_message = "The gateway config must name its environment."
  }

  assert {
    condition     = output.gateway_config.api_gateway.base_url == "https://api.holysheep.ai/v1" && output.gateway_config.api_gateway.timeout_seconds == 45 && output.gateway_config.api_gateway.max_retries == 5
    error_message = "The api_gateway block must carry the default base URL and the given timeout and retries."
  }

  assert {
    condition     = toset(keys(output.gateway_config.models)) == toset(var.allowed_models)
    error_message = "The models map must hold exactly the allowed models."
  }

  assert {
    condition     = output.gateway_config.models["gpt-4.1"].rate_limit_rpm == 30 && output.gateway_config.models["claude-sonnet-4-20250514"].rate_limit_rpm == 25
    error_message = "A per-model limit must override the global limit for that model."
  }

  assert {
    condition     = output.gateway_config.models["gemini-2.5-flash"].rate_limit_rpm == 100
    error_message = "A model without its own limit must get the global limit."
  }

  assert {
    condition     = output.gateway_config.models["gpt-4.1"].fallback_model == "deepseek-v3.2"
    error_message = "A configured fallback must appear on its model."
  }

  assert {
    condition     = output.gateway_config.models["deepseek-v3.2"].fallback_model == null
    error_message = "A model without a fallback must have a null fallback_model."
  }

  assert {
    condition     = alltrue([for model in values(output.gateway_config.models) : model.enabled && !model.cache_enabled])
    error_message = "Every model must be enabled and follow enable_caching."
  }

  assert {
    condition     = jsonencode(output.gateway_config.monitoring) == "{\"alert_threshold_ms\":800,\"log_requests\":true,\"track_latency\":true}"
    error_message = "The monitoring block must log requests, track latency and carry the alert threshold."
  }

  assert {
    condition     = jsonencode(output.gateway_config.credentials) == "{\"key_fingerprint\":\"0123456789abcdef\",\"key_version\":7,\"source\":\"vault\"}"
    error_message = "The credentials block must point at Vault with the key's version and fingerprint, and nothing more."
  }

  assert {
    condition     = output.gateway_config.tags == tomap({ Project = "AI-API-Gateway" })
    error_message = "The tags must be passed through."
  }

  # The exact JSON proves the order (global first, then by model name) and
  # that whole numbers stay whole.
  assert {
    condition = jsonencode(output.rate_limit_config) == jsonencode({
      rate_limits = [
        { name = "global", requests = 100, window_ms = 60000, burst = 200 },
        { name = "model:claude-sonnet-4-20250514", requests = 25, window_ms = 60000, models = ["claude-sonnet-4-20250514"] },
        { name = "model:gpt-4.1", requests = 30, window_ms = 60000, models = ["gpt-4.1"] },
      ]
    })
    error_message = "The rate-limit list must hold the global entry, then one entry per per-model limit ordered by model."
  }

  assert {
    condition     = strcontains(jsonencode(output.rate_limit_config), "\"burst\":200,\"name\":\"global\",\"requests\":100,\"window_ms\":60000")
    error_message = "The global limit must render as whole numbers."
  }

  assert {
    condition     = jsonencode(output.summary) == "{\"environment\":\"prod\",\"key_version\":7,\"models\":[\"gpt-4.1\",\"claude-sonnet-4-20250514\",\"gemini-2.5-flash\",\"deepseek-v3.2\"],\"rate_limit_rpm\":100}"
    error_message = "The summary must give the environment, the models in order, the global limit and the key version."
  }

  # The resource holds what the outputs show, so a change to any of it, a key
  # rotation included, is a change to the resource.
  assert {
    condition     = terraform_data.gateway.input.gateway_config == output.gateway_config && terraform_data.gateway.input.rate_limit_config == output.rate_limit_config
    error_message = "The gateway resource must hold the rendered gateway and rate-limit configuration."
  }
}

run "boundaries_accepted" {
  command = plan

  variables {
    environment         = "a2345678901234567890123456789-32"
    allowed_models      = ["model-a"]
    api_key_version     = 0
    base_url            = "http://127.0.0.1:8080"
    rate_limit_rpm      = 1
    model_rate_limits   = { "model-a" = 1 }
    fallback_models     = {}
    timeout_seconds     = 600
    max_retries         = 0
    alert_threshold_ms  = 1
    api_key_fingerprint = "ffffffffffffffff"
  }

  assert {
    condition     = output.gateway_config.credentials.key_version == 0 && output.summary.key_version == 0
    error_message = "Version 0 (a KV version 1 secret) must be accepted and recorded."
  }

  assert {
    condition     = output.gateway_config.models["model-a"].rate_limit_rpm == 1
    error_message = "A per-model limit equal to the global limit must be accepted."
  }

  assert {
    condition     = output.gateway_config.api_gateway.base_url == "http://127.0.0.1:8080"
    error_message = "A plain http URL with a port and no path must be accepted."
  }
}

run "mutual_fallbacks_accepted" {
  command = plan

  variables {
    model_rate_limits = {}
    max_retries       = 10
    timeout_seconds   = 0.5
    fallback_models = {
      "gpt-4.1"       = "deepseek-v3.2"
      "deepseek-v3.2" = "gpt-4.1"
    }
  }

  assert {
    condition     = output.gateway_config.models["deepseek-v3.2"].fallback_model == "gpt-4.1" && output.gateway_config.models["gpt-4.1"].fallback_model == "deepseek-v3.2"
    error_message = "Two models may fall back to each other."
  }

  assert {
    condition     = output.gateway_config.api_gateway.timeout_seconds == 0.5 && output.gateway_config.api_gateway.max_retries == 10
    error_message = "A fractional timeout and ten retries must be accepted."
  }
}
