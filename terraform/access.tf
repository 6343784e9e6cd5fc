# ---------------------------------------------------------------------------------------------
# The manager: a service account whose cluster-scoped API keys Terraform uses to create the
# topics, subject configs and schemas above. It is not used by any service.
# Its API key secrets end up in the Terraform state: keep the state in an encrypted backend
# with restricted access.
# ---------------------------------------------------------------------------------------------

resource "confluent_service_account" "manager" {
  display_name = "grocery-events-manager"
  description  = "Used by Terraform to manage the grocery-events topics and schemas"
}

resource "confluent_role_binding" "manager_cluster_admin" {
  principal   = "User:${confluent_service_account.manager.id}"
  role_name   = "CloudClusterAdmin"
  crn_pattern = local.kafka.rbac_crn
}

# ResourceOwner of the project's subjects only (registering schemas, setting compatibility),
# not of the whole Schema Registry.
resource "confluent_role_binding" "manager_subjects_owner" {
  principal   = "User:${confluent_service_account.manager.id}"
  role_name   = "ResourceOwner"
  crn_pattern = "${data.confluent_schema_registry_cluster.this.resource_name}/subject=grocery.*"
}

resource "confluent_api_key" "manager_kafka" {
  display_name = "grocery-events-manager-kafka"
  description  = "Kafka API key of grocery-events-manager, used by Terraform to manage topics"

  owner {
    id          = confluent_service_account.manager.id
    api_version = confluent_service_account.manager.api_version
    kind        = confluent_service_account.manager.kind
  }

  managed_resource {
    id          = local.kafka.id
    api_version = local.kafka.api_version
    kind        = local.kafka.kind

    environment {
      id = local.environment.id
    }
  }

  # The key must not be used before its owner may manage the cluster.
  depends_on = [confluent_role_binding.manager_cluster_admin]
}

resource "confluent_api_key" "manager_schema_registry" {
  display_name = "grocery-events-manager-schema-registry"
  description  = "Schema Registry API key of grocery-events-manager, used by Terraform to manage subjects"

  owner {
    id          = confluent_service_account.manager.id
    api_version = confluent_service_account.manager.api_version
    kind        = confluent_service_account.manager.kind
  }

  managed_resource {
    id          = data.confluent_schema_registry_cluster.this.id
    api_version = data.confluent_schema_registry_cluster.this.api_version
    kind        = data.confluent_schema_registry_cluster.this.kind

    environment {
      id = local.environment.id
    }
  }

  depends_on = [confluent_role_binding.manager_subjects_owner]
}

# ---------------------------------------------------------------------------------------------
# OAuth: the services authenticate with tokens of an external OIDC identity provider. Each
# role gets one identity pool whose CEL filter selects that role's tokens, and role bindings
# that grant exactly what the role does, nothing more.
# ---------------------------------------------------------------------------------------------

resource "confluent_identity_provider" "oidc" {
  display_name = var.identity_provider_name
  description  = "OIDC identity provider of the grocery-events services"
  issuer       = var.oidc_issuer_uri
  jwks_uri     = var.oidc_jwks_uri
}

resource "confluent_identity_pool" "order_producer" {
  identity_provider {
    id = confluent_identity_provider.oidc.id
  }
  display_name   = "grocery-events-order-producer"
  description    = "order-producer: writes orders"
  identity_claim = var.identity_claim
  filter         = var.order_producer_pool_filter
}

resource "confluent_identity_pool" "fulfillment" {
  identity_provider {
    id = confluent_identity_provider.oidc.id
  }
  display_name   = "grocery-events-fulfillment-service"
  description    = "fulfillment-service: reads orders, writes pick lists and the orders dead-letter topic"
  identity_claim = var.identity_claim
  filter         = var.fulfillment_pool_filter
}

resource "confluent_identity_pool" "picklist_consumer" {
  identity_provider {
    id = confluent_identity_provider.oidc.id
  }
  display_name   = "grocery-events-picklist-consumer"
  description    = "picklist-consumer: reads pick lists, writes the pick-list dead-letter topic"
  identity_claim = var.identity_claim
  filter         = var.picklist_consumer_pool_filter
}

# Schema Registry permissions: schemas are registered by Terraform only (confluent_schema in
# main.tf) and every service runs with auto.register.schemas=false, so every role gets
# DeveloperRead on the subjects it uses, also for the subjects it writes to: a producer only
# looks up the id of the registered schema (POST /subjects/<subject>, a read), and a consumer
# fetches writer schemas by id. Nobody but Terraform can change a subject, so a bad deploy
# cannot register an incompatible or accidental schema version.
# Dead-letter topics carry the original record bytes (with their original schema ids), so they
# have no subjects of their own.

# --- order-producer --------------------------------------------------------------------------

resource "confluent_role_binding" "order_producer_orders_write" {
  principal   = "User:${confluent_identity_pool.order_producer.id}"
  role_name   = "DeveloperWrite"
  crn_pattern = "${local.kafka.rbac_crn}/kafka=${local.kafka.id}/topic=${confluent_kafka_topic.orders.topic_name}"
}

resource "confluent_role_binding" "order_producer_orders_subject_read" {
  principal   = "User:${confluent_identity_pool.order_producer.id}"
  role_name   = "DeveloperRead"
  crn_pattern = "${data.confluent_schema_registry_cluster.this.resource_name}/subject=${confluent_schema.orders.subject_name}"
}

# --- fulfillment-service ---------------------------------------------------------------------

resource "confluent_role_binding" "fulfillment_orders_read" {
  principal   = "User:${confluent_identity_pool.fulfillment.id}"
  role_name   = "DeveloperRead"
  crn_pattern = "${local.kafka.rbac_crn}/kafka=${local.kafka.id}/topic=${confluent_kafka_topic.orders.topic_name}"
}

resource "confluent_role_binding" "fulfillment_group_read" {
  principal   = "User:${confluent_identity_pool.fulfillment.id}"
  role_name   = "DeveloperRead"
  crn_pattern = "${local.kafka.rbac_crn}/kafka=${local.kafka.id}/group=${local.fulfillment_consumer_group}"
}

resource "confluent_role_binding" "fulfillment_picklist_write" {
  principal   = "User:${confluent_identity_pool.fulfillment.id}"
  role_name   = "DeveloperWrite"
  crn_pattern = "${local.kafka.rbac_crn}/kafka=${local.kafka.id}/topic=${confluent_kafka_topic.picklist.topic_name}"
}

resource "confluent_role_binding" "fulfillment_orders_dlq_write" {
  principal   = "User:${confluent_identity_pool.fulfillment.id}"
  role_name   = "DeveloperWrite"
  crn_pattern = "${local.kafka.rbac_crn}/kafka=${local.kafka.id}/topic=${confluent_kafka_topic.orders_dlq.topic_name}"
}

# Each fulfillment instance uses the transactional id "fulfillment-service-<instance>".
resource "confluent_role_binding" "fulfillment_transactional_id_write" {
  principal   = "User:${confluent_identity_pool.fulfillment.id}"
  role_name   = "DeveloperWrite"
  crn_pattern = "${local.kafka.rbac_crn}/kafka=${local.kafka.id}/transactional-id=${local.fulfillment_transactional_id_prefix}*"
}

resource "confluent_role_binding" "fulfillment_orders_subject_read" {
  principal   = "User:${confluent_identity_pool.fulfillment.id}"
  role_name   = "DeveloperRead"
  crn_pattern = "${data.confluent_schema_registry_cluster.this.resource_name}/subject=${confluent_schema.orders.subject_name}"
}

# DeveloperRead, not DeveloperWrite: see the note on Schema Registry permissions above.
resource "confluent_role_binding" "fulfillment_picklist_subject_read" {
  principal   = "User:${confluent_identity_pool.fulfillment.id}"
  role_name   = "DeveloperRead"
  crn_pattern = "${data.confluent_schema_registry_cluster.this.resource_name}/subject=${confluent_schema.picklist.subject_name}"
}

# --- picklist-consumer -----------------------------------------------------------------------

resource "confluent_role_binding" "picklist_consumer_picklist_read" {
  principal   = "User:${confluent_identity_pool.picklist_consumer.id}"
  role_name   = "DeveloperRead"
  crn_pattern = "${local.kafka.rbac_crn}/kafka=${local.kafka.id}/topic=${confluent_kafka_topic.picklist.topic_name}"
}

resource "confluent_role_binding" "picklist_consumer_group_read" {
  principal   = "User:${confluent_identity_pool.picklist_consumer.id}"
  role_name   = "DeveloperRead"
  crn_pattern = "${local.kafka.rbac_crn}/kafka=${local.kafka.id}/group=${local.picklist_consumer_group}"
}

resource "confluent_role_binding" "picklist_consumer_picklist_subject_read" {
  principal   = "User:${confluent_identity_pool.picklist_consumer.id}"
  role_name   = "DeveloperRead"
  crn_pattern = "${data.confluent_schema_registry_cluster.this.resource_name}/subject=${confluent_schema.picklist.subject_name}"
}

resource "confluent_role_binding" "picklist_consumer_picklist_dlq_write" {
  principal   = "User:${confluent_identity_pool.picklist_consumer.id}"
  role_name   = "DeveloperWrite"
  crn_pattern = "${local.kafka.rbac_crn}/kafka=${local.kafka.id}/topic=${confluent_kafka_topic.picklist_dlq.topic_name}"
}
