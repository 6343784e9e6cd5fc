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
  description = "Type of the Kafka cluster to create: STANDARD or ENTERPRISE. BASIC is refused: Basic clusters have no role bindings on topics, consumer groups or transactional ids, which access.tf grants."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = var.kafka_cluster_type != "BASIC"
    error_message = "kafka_cluster_type BASIC is not supported: Confluent Cloud has no role bindings on the topics, consumer groups and transactional ids of Basic clusters, and every binding in access.tf needs them. Use STANDARD or ENTERPRISE."
  }

  validation {
    condition     = contains(["BASIC", "STANDARD", "ENTERPRISE"], var.kafka_cluster_type)
    error_message = "kafka_cluster_type must be STANDARD or ENTERPRISE."
  }
}

variable "kafka_cluster_availability" {
  description = "Availability of the Kafka cluster to create. STANDARD: SINGLE_ZONE or MULTI_ZONE (null: SINGLE_ZONE); ENTERPRISE: LOW or HIGH (null: LOW)."
  type        = string
  default     = null

  validation {
    condition     = var.kafka_cluster_availability == null || contains(["SINGLE_ZONE", "MULTI_ZONE", "LOW", "HIGH"], coalesce(var.kafka_cluster_availability, "-"))
    error_message = "kafka_cluster_availability must be null, SINGLE_ZONE or MULTI_ZONE (STANDARD), or LOW or HIGH (ENTERPRISE)."
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
# How the services authenticate.
# ---------------------------------------------------------------------------------------------

variable "auth_method" {
  description = "How the services authenticate: \"oauth\" (tokens of your OIDC identity provider, one identity pool per service) or \"api_keys\" (one service account per service with a Kafka and a Schema Registry API key; the secrets are in the state and in sensitive outputs)."
  type        = string
  default     = "oauth"

  validation {
    condition     = contains(["oauth", "api_keys"], var.auth_method)
    error_message = "auth_method must be \"oauth\" or \"api_keys\"."
  }
}

# ---------------------------------------------------------------------------------------------
# OAuth/OIDC (auth_method = "oauth"): the identity provider whose tokens the services present,
# and the claim filters that map a token to one identity pool (one pool per service).
# ---------------------------------------------------------------------------------------------

variable "identity_provider_name" {
  description = "Display name of the OIDC identity provider registered in Confluent Cloud."
  type        = string
  default     = "grocery-events-oidc"
}

variable "oidc_issuer_uri" {
  description = "Issuer URI of the OIDC identity provider (the iss claim of its tokens), for example https://login.example.com/oauth2/default. Required when auth_method is \"oauth\"."
  type        = string
  default     = null

  validation {
    condition     = var.oidc_issuer_uri == null || can(regex("^https://", var.oidc_issuer_uri))
    error_message = "oidc_issuer_uri must be an https:// URI."
  }
}

variable "oidc_jwks_uri" {
  description = "JWKS URI of the OIDC identity provider, for example https://login.example.com/oauth2/default/v1/keys. Required when auth_method is \"oauth\"."
  type        = string
  default     = null

  validation {
    condition     = var.oidc_jwks_uri == null || can(regex("^https://", var.oidc_jwks_uri))
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

variable "identity_pool_filters" {
  description = "CEL filter of each service's identity pool, selecting that service's tokens and no other's, for example { fulfillment = \"claims.sub == 'fulfillment-service-client-id'\" }. Keys: order_producer, fulfillment, picklist_consumer, dlq_reader. Required when auth_method is \"oauth\"."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for f in values(var.identity_pool_filters) : length(trimspace(f)) > 0 && trimspace(f) != "true"])
    error_message = "Every identity pool filter must be a CEL expression that selects only that service's tokens (not empty, not \"true\")."
  }

  validation {
    condition     = length(setsubtract(keys(var.identity_pool_filters), ["order_producer", "fulfillment", "picklist_consumer", "dlq_reader"])) == 0
    error_message = "identity_pool_filters has keys for order_producer, fulfillment, picklist_consumer and dlq_reader only."
  }
}
