# Rules that compare variables with each other. Each run breaks exactly one of
# them, so the expected failure can only come from that rule.

variables {
  environment         = "prod"
  allowed_models      = ["gpt-4.1", "claude-sonnet-4-20250514", "deepseek-v3.2"]
  api_key_version     = 2
  api_key_fingerprint = "0123456789abcdef"
  rate_limit_rpm      = 60
}

run "fallback_from_unknown_model" {
  command = plan

  variables {
    fallback_models = { "gemini-2.5-flash" = "gpt-4.1" }
  }

  expect_failures = [terraform_data.gateway]
}

# The seed configuration's mistake: a fallback to a model nobody allowed.
run "fallback_to_model_not_allowed" {
  command = plan

  variables {
    fallback_models = { "gpt-4.1" = "gpt-3.5-turbo" }
  }

  expect_failures = [terraform_data.gateway]
}

run "fallback_to_itself" {
  command = plan

  variables {
    fallback_models = { "gpt-4.1" = "gpt-4.1" }
  }

  expect_failures = [terraform_data.gateway]
}

run "rate_limit_for_unknown_model" {
  command = plan

  variables {
    model_rate_limits = { "gemini-2.5-flash" = 10 }
  }

  expect_failures = [terraform_data.gateway]
}

run "rate_limit_above_global" {
  command = plan

  variables {
    model_rate_limits = { "gpt-4.1" = 30, "deepseek-v3.2" = 61 }
  }

  expect_failures = [terraform_data.gateway]
}

# The same shapes within the rules plan cleanly.
run "rules_satisfied" {
  command = plan

  variables {
    fallback_models   = { "gpt-4.1" = "claude-sonnet-4-20250514", "claude-sonnet-4-20250514" = "deepseek-v3.2" }
    model_rate_limits = { "gpt-4.1" = 30, "deepseek-v3.2" = 60 }
  }

  assert {
    condition     = output.gateway_config.models["claude-sonnet-4-20250514"].fallback_model == "deepseek-v3.2"
    error_message = "A fallback between allowed models must be kept."
  }

  assert {
    condition     = [for entry in output.rate_limit_config.rate_limits : entry.name] == ["global", "model:deepseek-v3.2", "model:gpt-4.1"]
    error_message = "Per-model entries must follow the global entry in model order."
  }
}
