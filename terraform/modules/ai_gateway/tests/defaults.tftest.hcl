# Only the required variables set: every optional input takes its default.

variables {
  environment         = "dev"
  allowed_models      = ["gpt-4.1", "deepseek-v3.2"]
  api_key_version     = 1
  api_key_fingerprint = "fedcba9876543210"
}

run "defaults" {
  command = plan

  assert {
    condition     = jsonencode(output.gateway_config.api_gateway) == "{\"base_url\":\"https://api.holysheep.ai/v1\",\"max_retries\":3,\"timeout_seconds\":30}"
    error_message = "The api_gateway block must hold the default base URL, 3 retries and a 30 second timeout."
  }

  assert {
    condition     = jsonencode(output.rate_limit_config) == "{\"rate_limits\":[{\"burst\":120,\"name\":\"global\",\"requests\":60,\"window_ms\":60000}]}"
    error_message = "Without per-model limits the list must hold only the global entry of 60 requests a minute."
  }

  assert {
    condition     = alltrue([for model in values(output.gateway_config.models) : model.enabled && model.rate_limit_rpm == 60 && model.cache_enabled && model.fallback_model == null])
    error_message = "Every model must be enabled with the global limit, caching and no fallback."
  }

  assert {
    condition     = output.gateway_config.monitoring.alert_threshold_ms == 500
    error_message = "The alert threshold must default to 500 ms."
  }

  assert {
    condition     = length(output.gateway_config.tags) == 0
    error_message = "Without tags the tags map must be empty."
  }

  assert {
    condition     = output.summary.rate_limit_rpm == 60 && output.summary.environment == "dev" && output.summary.key_version == 1
    error_message = "The summary must reflect the defaults."
  }
}
