# Each run breaks one variable's rule and expects exactly that variable to be
# rejected; everything else stays valid.

variables {
  environment         = "staging"
  allowed_models      = ["gpt-4.1", "deepseek-v3.2"]
  api_key_version     = 3
  api_key_fingerprint = "0123456789abcdef"
}

# environment

run "environment_uppercase" {
  command = plan

  variables {
    environment = "Prod"
  }

  expect_failures = [var.environment]
}

run "environment_starts_with_digit" {
  command = plan

  variables {
    environment = "1dev"
  }

  expect_failures = [var.environment]
}

run "environment_starts_with_dash" {
  command = plan

  variables {
    environment = "-dev"
  }

  expect_failures = [var.environment]
}

run "environment_underscore" {
  command = plan

  variables {
    environment = "dev_eu"
  }

  expect_failures = [var.environment]
}

run "environment_too_long" {
  command = plan

  variables {
    environment = "a23456789012345678901234567890123"
  }

  expect_failures = [var.environment]
}

run "environment_empty" {
  command = plan

  variables {
    environment = ""
  }

  expect_failures = [var.environment]
}

# allowed_models

run "allowed_models_empty" {
  command = plan

  variables {
    allowed_models = []
  }

  expect_failures = [var.allowed_models]
}

run "allowed_models_empty_name" {
  command = plan

  variables {
    allowed_models = ["gpt-4.1", ""]
  }

  expect_failures = [var.allowed_models]
}

run "allowed_models_blank_name" {
  command = plan

  variables {
    allowed_models = ["  "]
  }

  expect_failures = [var.allowed_models]
}

run "allowed_models_duplicate" {
  command = plan

  variables {
    allowed_models = ["gpt-4.1", "deepseek-v3.2", "gpt-4.1"]
  }

  expect_failures = [var.allowed_models]
}

# api_key_version

run "api_key_version_negative" {
  command = plan

  variables {
    api_key_version = -1
  }

  expect_failures = [var.api_key_version]
}

run "api_key_version_fractional" {
  command = plan

  variables {
    api_key_version = 1.5
  }

  expect_failures = [var.api_key_version]
}

# api_key_fingerprint

run "api_key_fingerprint_uppercase" {
  command = plan

  variables {
    api_key_fingerprint = "0123456789ABCDEF"
  }

  expect_failures = [var.api_key_fingerprint]
}

run "api_key_fingerprint_too_short" {
  command = plan

  variables {
    api_key_fingerprint = "0123456789abcde"
  }

  expect_failures = [var.api_key_fingerprint]
}

run "api_key_fingerprint_too_long" {
  command = plan

  variables {
    api_key_fingerprint = "0123456789abcdef0"
  }

  expect_failures = [var.api_key_fingerprint]
}

run "api_key_fingerprint_full_digest" {
  command = plan

  variables {
    api_key_fingerprint = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
  }

  expect_failures = [var.api_key_fingerprint]
}

run "api_key_fingerprint_not_hex" {
  command = plan

  variables {
    api_key_fingerprint = "0123456789abcdeg"
  }

  expect_failures = [var.api_key_fingerprint]
}

run "api_key_fingerprint_looks_like_a_key" {
  command = plan

  variables {
    api_key_fingerprint = "sk-holysheep-xyz"
  }

  expect_failures = [var.api_key_fingerprint]
}

# base_url

run "base_url_without_scheme" {
  command = plan

  variables {
    base_url = "api.holysheep.ai/v1"
  }

  expect_failures = [var.base_url]
}

run "base_url_other_scheme" {
  command = plan

  variables {
    base_url = "ftp://api.holysheep.ai/v1"
  }

  expect_failures = [var.base_url]
}

run "base_url_without_host" {
  command = plan

  variables {
    base_url = "https:///v1"
  }

  expect_failures = [var.base_url]
}

run "base_url_scheme_only" {
  command = plan

  variables {
    base_url = "https://"
  }

  expect_failures = [var.base_url]
}

run "base_url_trailing_slash" {
  command = plan

  variables {
    base_url = "https://api.holysheep.ai/v1/"
  }

  expect_failures = [var.base_url]
}

run "base_url_with_query" {
  command = plan

  variables {
    base_url = "https://api.holysheep.ai/v1?region=eu"
  }

  expect_failures = [var.base_url]
}

run "base_url_with_space" {
  command = plan

  variables {
    base_url = "https://api.holy sheep.ai/v1"
  }

  expect_failures = [var.base_url]
}

# rate_limit_rpm

run "rate_limit_rpm_zero" {
  command = plan

  variables {
    rate_limit_rpm = 0
  }

  expect_failures = [var.rate_limit_rpm]
}

run "rate_limit_rpm_negative" {
  command = plan

  variables {
    rate_limit_rpm = -60
  }

  expect_failures = [var.rate_limit_rpm]
}

run "rate_limit_rpm_fractional" {
  command = plan

  variables {
    rate_limit_rpm = 59.5
  }

  expect_failures = [var.rate_limit_rpm]
}

# model_rate_limits

run "model_rate_limit_zero" {
  command = plan

  variables {
    model_rate_limits = { "gpt-4.1" = 0 }
  }

  expect_failures = [var.model_rate_limits]
}

run "model_rate_limit_negative" {
  command = plan

  variables {
    model_rate_limits = { "gpt-4.1" = -30 }
  }

  expect_failures = [var.model_rate_limits]
}

run "model_rate_limit_fractional" {
  command = plan

  variables {
    model_rate_limits = { "gpt-4.1" = 2.5 }
  }

  expect_failures = [var.model_rate_limits]
}

# timeout_seconds

run "timeout_seconds_zero" {
  command = plan

  variables {
    timeout_seconds = 0
  }

  expect_failures = [var.timeout_seconds]
}

run "timeout_seconds_negative" {
  command = plan

  variables {
    timeout_seconds = -1
  }

  expect_failures = [var.timeout_seconds]
}

run "timeout_seconds_above_600" {
  command = plan

  variables {
    timeout_seconds = 601
  }

  expect_failures = [var.timeout_seconds]
}

# max_retries

run "max_retries_negative" {
  command = plan

  variables {
    max_retries = -1
  }

  expect_failures = [var.max_retries]
}

run "max_retries_above_10" {
  command = plan

  variables {
    max_retries = 11
  }

  expect_failures = [var.max_retries]
}

run "max_retries_fractional" {
  command = plan

  variables {
    max_retries = 2.5
  }

  expect_failures = [var.max_retries]
}

# alert_threshold_ms

run "alert_threshold_ms_zero" {
  command = plan

  variables {
    alert_threshold_ms = 0
  }

  expect_failures = [var.alert_threshold_ms]
}

run "alert_threshold_ms_fractional" {
  command = plan

  variables {
    alert_threshold_ms = 0.5
  }

  expect_failures = [var.alert_threshold_ms]
}
