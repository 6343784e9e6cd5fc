terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # 2.83.x: the newest minor release line when this was written. Patch releases only;
    # move to a new minor release deliberately (read the provider's CHANGELOG first).
    confluent = {
      source  = "confluentinc/confluent"
      version = "~> 2.83.0"
    }
  }
}

# The Cloud API key (an OrganizationAdmin- or EnvironmentAdmin-level key of a service account
# that runs Terraform) manages environments, clusters, identity pools and role bindings.
# Topics, subject configs and schemas are managed through the cluster-scoped API keys of the
# `grocery-events-manager` service account that this configuration creates (see access.tf).
provider "confluent" {
  cloud_api_key    = var.confluent_cloud_api_key
  cloud_api_secret = var.confluent_cloud_api_secret
}
