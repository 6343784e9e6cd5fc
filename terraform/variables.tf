# ---------------------------------------------------------------------------------------------
# Credentials of the Terraform runner. Pass them as TF_VAR_confluent_cloud_api_key /
# TF_VAR_confluent_cloud_api_secret, never in a committed .tfvars file.
# ---------------------------------------------------------------------------------------------

variable "confluent_cloud_api_key" {
  description = "Confluent Cloud API key (a Cloud resource-management key, not a cluster key) of the service account that runs Terraform."
  type        = string
  sensitive   = true
}

variable "confluent_cloud_api_secret" {
  description = "Secret of confluent_cloud_api_key."
  type        = string
  sensitive   = true
}

# ---------------------------------------------------------------------------------------------
# Environment: create one, or use an existing one by id.
# ---------------------------------------------------------------------------------------------

variable "environment_id" {
  description = "Id of an existing Confluent Cloud environment (env-...). Leave null to create a new environment named environment_name."
  type        = string
  default     = null

  validation {
    condition     = var.environment_id == null || can(regex("^env-[a-z0-9]+$", var.environment_id))
    error_message = "environment_id must be null or an environment id such as env-abc123."
  }
}

variable "environment_name" {
  description = "Display name of the environment to create when environment_id is null."
  type        = string
  default     = "grocery-events"

  validation {
    condition     = can(regex("^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$", var.environment_name))
    error_message = "environment_name must start and end with a letter or digit and contain only letters, digits, '-' and '_'."
  }
}

variable "stream_governance_package" {
  description = "Stream Governance package of a newly created environment (this provisions its Schema Registry cluster)."
  type        = string
  default     = "ESSENTIALS"

  validation {
    condition     = contains(["ESSENTIALS", "ADVANCED"], var.stream_governance_package)
    error_message = "stream_governance_package must be ESSENTIALS or ADVANCED."
  }
}

# ---------------------------------------------------------------------------------------------
# Kafka cluster: create one, or use an existing one by id.
# ---------------------------------------------------------------------------------------------

variable "kafka_cluster_id" {
  description = "Id of an existing Kafka cluster (lkc-...) in the environment. Leave null to create a new cluster."
  type        = string
  default     = null

  validation {
    condition     = var.kafka_cluster_id == null || can(regex("^lkc-[a-z0-9]+$", var.kafka_cluster_id))
    error_message = "kafka_cluster_id must be null or a logical Kafka cluster id such as lkc-abc123."
  }
}

variable "kafka_cluster_name" {
  description = "Display name of the Kafka cluster to create when kafka_cluster_id is null."
  type        = string
  default     = "grocery-events"

  validation {
    condition     = length(trimspace(var.kafka_cluster_name)) > 0
    error_message = "kafka_cluster_name must not be empty."
  }
}

variable "kafka_cluster_type" {
  description = "Type of the Kafka cluster to create: BASIC, STANDARD or ENTERPRISE."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = contains(["BASIC", "STANDARD", "ENTERPRISE"], var.kafka_cluster_type)
    error_message = "kafka_cluster_type must be BASIC, STANDARD or ENTERPRISE."
  }
}

variable "kafka_cluster_availability" {
  description = "Availability of the Kafka cluster to create: SINGLE_ZONE or MULTI_ZONE (BASIC supports SINGLE_ZONE only)."
  type        = string
  default     = "SINGLE_ZONE"

  validation {
    condition     = contains(["SINGLE_ZONE", "MULTI_ZONE"], var.kafka_cluster_availability)
    error_message = "kafka_cluster_availability must be SINGLE_ZONE or MULTI_ZONE."
  }
}

variable "cloud" {
  description = "Cloud provider of the Kafka cluster to create: AWS, GCP or AZURE."
  type        = string
  default     = "AWS"

  validation {
    condition     = contains(["AWS", "GCP", "AZURE"], var.cloud)
    error_message = "cloud must be AWS, GCP or AZURE."
  }
}

variable "region" {
  description = "Cloud region of the Kafka cluster to create, for example us-east-2 (AWS), us-central1 (GCP) or eastus (AZURE)."
  type        = string
  default     = "us-east-2"

  validation {
    condition     = can(regex("^[a-z0-9-]+$", var.region))
    error_message = "region must be a cloud region name such as us-east-2."
  }
}

# ---------------------------------------------------------------------------------------------
# OAuth/OIDC: the identity provider whose tokens the services present, and the claim filters
# that map a token to one identity pool (one pool per role).
# ---------------------------------------------------------------------------------------------

variable "identity_provider_name" {
  description = "Display name of the OIDC identity provider registered in Confluent Cloud."
  type        = string
  default     = "grocery-events-oidc"
}

variable "oidc_issuer_uri" {
  description = "Issuer URI of the OIDC identity provider (the iss claim of its tokens), for example https://login.example.com/oauth2/default."
  type        = string

  validation {
    condition     = can(regex("^https://", var.oidc_issuer_uri))
    error_message = "oidc_issuer_uri must be an https:// URI."
  }
}

variable "oidc_jwks_uri" {
  description = "JWKS URI of the OIDC identity provider, for example https://login.example.com/oauth2/default/v1/keys."
  type        = string

  validation {
    condition     = can(regex("^https://", var.oidc_jwks_uri))
    error_message = "oidc_jwks_uri must be an https:// URI."
  }
}

variable "identity_claim" {
  description = "JWT claim that names the authenticated identity in audit logs, for every identity pool."
  type        = string
  default     = "claims.sub"

  validation {
    condition     = can(regex("^claims\\.", var.identity_claim))
    error_message = "identity_claim must be a claim reference such as claims.sub."
  }
}

variable "order_producer_pool_filter" {
  description = "CEL filter selecting the tokens of order-producer instances, for example claims.sub == \"order-producer-client-id\"."
  type        = string

  validation {
    condition     = length(trimspace(var.order_producer_pool_filter)) > 0 && trimspace(var.order_producer_pool_filter) != "true"
    error_message = "order_producer_pool_filter must be a CEL expression that selects only the order producers' tokens."
  }
}

variable "fulfillment_pool_filter" {
  description = "CEL filter selecting the tokens of fulfillment-service instances, for example claims.sub == \"fulfillment-service-client-id\"."
  type        = string

  validation {
    condition     = length(trimspace(var.fulfillment_pool_filter)) > 0 && trimspace(var.fulfillment_pool_filter) != "true"
    error_message = "fulfillment_pool_filter must be a CEL expression that selects only the fulfillment service's tokens."
  }
}

variable "picklist_consumer_pool_filter" {
  description = "CEL filter selecting the tokens of picklist-consumer instances, for example claims.sub == \"picklist-consumer-client-id\"."
  type        = string

  validation {
    condition     = length(trimspace(var.picklist_consumer_pool_filter)) > 0 && trimspace(var.picklist_consumer_pool_filter) != "true"
    error_message = "picklist_consumer_pool_filter must be a CEL expression that selects only the pick-list consumers' tokens."
  }
}
