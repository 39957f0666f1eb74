# A root module calling ai_gateway with literal values. In real use the
# values come from terraform.tfvars.json, and the key's version and
# fingerprint from the Vault secret; the key itself never reaches Terraform.

terraform {
  required_version = ">= 1.6"
}

module "ai_gateway" {
  source = "../.."

  environment         = "dev"
  allowed_models      = ["gpt-4.1", "claude-sonnet-4-20250514", "gemini-2.5-flash", "deepseek-v3.2"]
  api_key_version     = 1
  api_key_fingerprint = "9f86d081884c7d65"

  rate_limit_rpm    = 20
  model_rate_limits = { "gpt-4.1" = 10 }
  fallback_models   = { "gpt-4.1" = "deepseek-v3.2" }

  tags = {
    Project   = "AI-API-Gateway"
    ManagedBy = "Terraform"
  }
}

output "gateway_config" {
  description = "Contents of gateway.json."
  value       = module.ai_gateway.gateway_config
}

output "rate_limit_config" {
  description = "Contents of rate-limits.json."
  value       = module.ai_gateway.rate_limit_config
}

output "summary" {
  description = "The environment in brief."
  value       = module.ai_gateway.summary
}
