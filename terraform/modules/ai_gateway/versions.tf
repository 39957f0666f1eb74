# Only Terraform's built-in terraform_data resource is used, so
# `terraform init` downloads nothing and works without a network.
terraform {
  required_version = ">= 1.6"
}
