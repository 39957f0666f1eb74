# Required inputs.

variable "environment" {
  description = "Name of the environment this gateway configuration belongs to, for example `dev` or `prod`."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.environment))
    error_message = "The environment must start with a lowercase letter, contain only lowercase letters, digits and '-', and be at most 32 characters long."
  }
}

variable "allowed_models" {
  description = "Models this environment may call through the gateway."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.allowed_models) > 0
    error_message = "The allowed_models list must name at least one model."
  }

  validation {
    condition     = alltrue([for model in var.allowed_models : trimspace(model) != ""])
    error_message = "The allowed_models list must not contain empty or blank model names."
  }

  validation {
    condition     = length(distinct(var.allowed_models)) == length(var.allowed_models)
    error_message = "The allowed_models list must not name the same model twice."
  }
}

variable "api_key_version" {
  description = "Vault KV version of the API key the hosts receive; 0 for a KV version 1 secret, which has no versions. The key itself never enters Terraform."
  type        = number
  nullable    = false

  validation {
    condition     = var.api_key_version >= 0 && floor(var.api_key_version) == var.api_key_version
    error_message = "The api_key_version must be a whole number of at least 0 (0 for a KV version 1 secret)."
  }
}

variable "api_key_fingerprint" {
  description = "First 16 hexadecimal characters (lowercase) of the SHA-256 digest of the API key, so that a key rotation shows in the plan."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[0-9a-f]{16}$", var.api_key_fingerprint))
    error_message = "The api_key_fingerprint must be exactly 16 lowercase hexadecimal characters (the start of the key's SHA-256 digest)."
  }
}

# Optional inputs.

variable "base_url" {
  description = "Base URL of the OpenAI-compatible API, without a trailing slash."
  type        = string
  default     = "https://api.holysheep.ai/v1"
  nullable    = false

  validation {
    condition     = can(regex("^https?://[^/?#[:space:]]+(/[^?#[:space:]]*)?$", var.base_url))
    error_message = "The base_url must start with http:// or https://, name a host, and carry no spaces, query string or fragment."
  }

  validation {
    condition     = !endswith(var.base_url, "/")
    error_message = "The base_url must not end with a slash."
  }
}

variable "rate_limit_rpm" {
  description = "Global limit, in requests per minute, for all models together; bursts may reach twice this."
  type        = number
  default     = 60
  nullable    = false

  validation {
    condition     = var.rate_limit_rpm >= 1 && floor(var.rate_limit_rpm) == var.rate_limit_rpm
    error_message = "The rate_limit_rpm must be a whole number of at least 1."
  }
}

variable "model_rate_limits" {
  description = "Per-model limits in requests per minute, keyed by model; each model must be allowed and its limit may not exceed rate_limit_rpm."
  type        = map(number)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for limit in values(var.model_rate_limits) : limit >= 1 && floor(limit) == limit])
    error_message = "Every limit in model_rate_limits must be a whole number of at least 1."
  }
}

variable "enable_caching" {
  description = "Whether the gateway caches responses."
  type        = bool
  default     = true
  nullable    = false
}

variable "fallback_models" {
  description = "Model to use when a model fails, keyed by the failing model; both must be allowed, and a model cannot fall back to itself."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "timeout_seconds" {
  description = "Client timeout for one API request, in seconds."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.timeout_seconds > 0 && var.timeout_seconds <= 600
    error_message = "The timeout_seconds must be greater than 0 and at most 600."
  }
}

variable "max_retries" {
  description = "How many times a client retries a failed request."
  type        = number
  default     = 3
  nullable    = false

  validation {
    condition     = var.max_retries >= 0 && var.max_retries <= 10 && floor(var.max_retries) == var.max_retries
    error_message = "The max_retries must be a whole number from 0 to 10."
  }
}

variable "alert_threshold_ms" {
  description = "Response time, in milliseconds, above which monitoring alerts and host verification fails."
  type        = number
  default     = 500
  nullable    = false

  validation {
    condition     = var.alert_threshold_ms >= 1 && floor(var.alert_threshold_ms) == var.alert_threshold_ms
    error_message = "The alert_threshold_ms must be a whole number of at least 1."
  }
}

variable "tags" {
  description = "Labels recorded with the gateway configuration."
  type        = map(string)
  default     = {}
  nullable    = false
}
