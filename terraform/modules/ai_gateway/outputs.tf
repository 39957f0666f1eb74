# Outputs come from the same locals as the resource's input rather than from
# its `output` attribute, which stays unknown until apply: the plan already
# shows the final values, and callers can read them from a plan.

output "gateway_config" {
  description = "Gateway configuration, written verbatim to each host as gateway.json: environment, api_gateway, models (each with enabled, rate_limit_rpm, cache_enabled, fallback_model), monitoring, credentials (source, key_version, key_fingerprint) and tags."
  value       = local.gateway_config
}

output "rate_limit_config" {
  description = "Rate-limit configuration, written to each host as rate-limits.json: a `rate_limits` list holding the global limit (with a burst of twice the limit), then one entry per per-model limit, ordered by model name."
  value       = local.rate_limit_config
}

output "summary" {
  description = "Short description of the environment: its name, allowed models, global requests per minute and the API key version in use."
  value = {
    environment    = var.environment
    models         = var.allowed_models
    rate_limit_rpm = var.rate_limit_rpm
    key_version    = var.api_key_version
  }
}
