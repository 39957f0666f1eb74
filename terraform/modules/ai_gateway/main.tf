locals {
  rate_limit_window_ms = 60000

  gateway_config = {
    environment = var.environment

    api_gateway = {
      base_url        = var.base_url
      timeout_seconds = var.timeout_seconds
      max_retries     = var.max_retries
    }

    models = {
      for model in var.allowed_models : model => {
        enabled        = true
        rate_limit_rpm = lookup(var.model_rate_limits, model, var.rate_limit_rpm)
        cache_enabled  = var.enable_caching
        fallback_model = lookup(var.fallback_models, model, null)
      }
    }

    monitoring = {
      log_requests       = true
      track_latency      = true
      alert_threshold_ms = var.alert_threshold_ms
    }

    # Hosts get the key from Vault; Terraform keeps only which version it is
    # and a digest prefix, enough to notice a rotation.
    credentials = {
      source          = "vault"
      key_version     = var.api_key_version
      key_fingerprint = var.api_key_fingerprint
    }

    tags = var.tags
  }

  rate_limit_config = {
    rate_limits = concat(
      [{
        name      = "global"
        requests  = var.rate_limit_rpm
        window_ms = local.rate_limit_window_ms
        burst     = var.rate_limit_rpm * 2
      }],
      [
        for model in sort(keys(var.model_rate_limits)) : {
          name      = "model:${model}"
          requests  = var.model_rate_limits[model]
          window_ms = local.rate_limit_window_ms
          models    = [model]
        }
      ],
    )
  }
}

# Holds the environment's rendered configuration in state. Any settings change,
# or a new key version or fingerprint, makes the plan show an in-place update
# of this one resource; the same inputs plan no change.
resource "terraform_data" "gateway" {
  input = {
    gateway_config    = local.gateway_config
    rate_limit_config = local.rate_limit_config
  }

  # Rules across variables live here because Terraform 1.6 validation blocks
  # can only refer to their own variable.
  lifecycle {
    precondition {
      condition     = alltrue([for model in keys(var.fallback_models) : contains(var.allowed_models, model)])
      error_message = "Every model given a fallback in fallback_models must be listed in allowed_models."
    }

    precondition {
      condition     = alltrue([for target in values(var.fallback_models) : contains(var.allowed_models, target)])
      error_message = "Every fallback target in fallback_models must be listed in allowed_models."
    }

    precondition {
      condition     = alltrue([for model, target in var.fallback_models : model != target])
      error_message = "A model in fallback_models cannot fall back to itself."
    }

    precondition {
      condition     = alltrue([for model in keys(var.model_rate_limits) : contains(var.allowed_models, model)])
      error_message = "Every model in model_rate_limits must be listed in allowed_models."
    }

    precondition {
      condition     = alltrue([for limit in values(var.model_rate_limits) : limit <= var.rate_limit_rpm])
      error_message = "No limit in model_rate_limits may exceed the global rate_limit_rpm."
    }
  }
}
