terraform {
  # OpenTofu >= 1.8 or Terraform >= 1.7: `tofu test` with mock_provider (tests/) needs them;
  # CI checks this directory with OpenTofu (.ci/terraform-check).
  required_version = ">= 1.7.0"

  required_providers {
    # 2.83.x: the newest minor release line when this was written. Patch releases only;
    # move to a new minor release deliberately (read the provider's CHANGELOG first).
    # .terraform.lock.hcl pins the exact version.
    confluent = {
      source  = "confluentinc/confluent"
      version = "~> 2.83.0"
    }
  }

  # The state holds the manager's API key secrets and, with auth_method = "api_keys", every
  # service's: keep it in an encrypted remote backend with restricted access, never in git.
  # For example S3 with its own state locking (OpenTofu or Terraform >= 1.10); uncomment and
  # run `tofu init -migrate-state`. CI runs `tofu init -backend=false`, which needs none.
  #
  # backend "s3" {
  #   bucket       = "grocery-events-terraform-state"
  #   key          = "confluent/terraform.tfstate"
  #   region       = "us-east-2"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

# The Cloud API key of the service account that runs Terraform manages environments, clusters,
# service accounts, identity providers, identity pools, API keys and role bindings: it must be
# an OrganizationAdmin's (creating service accounts and identity providers is an organization
# operation; EnvironmentAdmin is not enough). Topics, subject configs and schemas are managed
# through the cluster-scoped API keys of the `grocery-events-manager` service account that
# this configuration creates (see access.tf).
provider "confluent" {
  cloud_api_key    = var.confluent_cloud_api_key
  cloud_api_secret = var.confluent_cloud_api_secret
}
