# ---------------------------------------------------------------------------------------------
# Who may do what. Each service (and the operators' dead-letter reader) is one principal: an
# identity pool of the OIDC identity provider (auth_method = "oauth") or a service account
# with API keys (auth_method = "api_keys"). Both variants get the same role bindings, built
# from local.service_grants; `cargo test -p xtask --test terraform_consistency` compares
# service_grants with what the services read and write, and `tofu test` checks every
# binding's role and CRN in the plan.
#
# Schema Registry permissions: schemas are registered by Terraform only (confluent_schema in
# main.tf) and every service runs with auto.register.schemas=false, so every service gets
# DeveloperRead on the subjects it uses, also for the subjects it writes to: a producer only
# looks up the id of the registered schema (POST /subjects/<subject>, a read), and a consumer
# fetches writer schemas by id. Nobody but Terraform can change a subject, so a bad deploy
# cannot register an incompatible or accidental schema version.
# Dead-letter topics carry the original record bytes (with their original schema ids), so they
# have no subjects of their own: their reader decodes them with the original subjects.
# ---------------------------------------------------------------------------------------------

locals {
  services = {
    order_producer = {
      display_name = "grocery-events-order-producer"
      description  = "order-producer: writes orders (transactional), reads them back for idempotency keys, reads order status changes and writes each order's latest state for the Order API's history view"
    }
    fulfillment = {
      display_name = "grocery-events-fulfillment-service"
      description  = "fulfillment-service: reads orders, writes pick lists, order status changes and the orders dead-letter topic"
    }
    picklist_consumer = {
      display_name = "grocery-events-picklist-consumer"
      description  = "picklist-consumer: reads pick lists, writes store staff's order status changes and the pick-list dead-letter topic"
    }
    dlq_reader = {
      display_name = "grocery-events-dlq-reader"
      description  = "operators' tools: read the dead-letter topics to inspect and replay records"
    }
  }

  # Every grant of every service: a role on a topic, consumer group, transactional id (a
  # trailing * makes a prefix) or Schema Registry subject.
  service_grants = {
    order_producer = [
      { role = "DeveloperWrite", kind = "topic", name = local.orders_topic },
      { role = "DeveloperRead", kind = "subject", name = local.orders_subject },
      # Orders are written with the registered order contract: one its rule order_has_lines
      # refuses goes to the orders' dead-letter topic (the rule's DLQ action, in the producer).
      { role = "DeveloperWrite", kind = "topic", name = local.orders_dlq_topic },
      # The Order API sends each order in a Kafka transaction under the transactional id
      # "order-api-<instance>" (a restart aborts what the previous run left open), and reads
      # back on start the idempotency keys of the orders it accepted within its key window.
      { role = "DeveloperWrite", kind = "transactional-id", name = "${local.order_api_transactional_id_prefix}*" },
      { role = "DeveloperRead", kind = "topic", name = local.orders_topic, key_suffix = "/read" },
      # The Order API's history view (GET /orders/{id}) is rebuilt from this topic on start.
      { role = "DeveloperRead", kind = "topic", name = local.order_status_topic },
      { role = "DeveloperRead", kind = "group", name = local.order_api_consumer_group },
      { role = "DeveloperRead", kind = "subject", name = local.order_status_subject },
      # No write on the status dead-letter topic: the view reads as a replay, which passes over
      # a record it cannot decode (counted) and never dead-letters or commits.
      # The latest state of each order: the view starts from it and writes it, transactionally
      # under one id, "order-api-state" (within the transactional ids granted above; the
      # instance started last fences the others).
      { role = "DeveloperWrite", kind = "topic", name = local.order_state_topic },
      { role = "DeveloperRead", kind = "topic", name = local.order_state_topic, key_suffix = "/read" },
      { role = "DeveloperRead", kind = "subject", name = local.order_state_subject },
    ]
    fulfillment = [
      { role = "DeveloperRead", kind = "topic", name = local.orders_topic },
      { role = "DeveloperRead", kind = "group", name = local.fulfillment_consumer_group },
      { role = "DeveloperWrite", kind = "topic", name = local.picklist_topic },
      { role = "DeveloperWrite", kind = "topic", name = local.orders_dlq_topic },
      # Each fulfillment instance uses the transactional id "fulfillment-service-<instance>".
      { role = "DeveloperWrite", kind = "transactional-id", name = "${local.fulfillment_transactional_id_prefix}*" },
      { role = "DeveloperRead", kind = "subject", name = local.orders_subject },
      # DeveloperRead, not DeveloperWrite: see the note on Schema Registry permissions above.
      { role = "DeveloperRead", kind = "subject", name = local.picklist_subject },
      # RECEIVED and PICKLIST_CREATED, in the same transaction as the pick list.
      { role = "DeveloperWrite", kind = "topic", name = local.order_status_topic },
      { role = "DeveloperRead", kind = "subject", name = local.order_status_subject },
    ]
    picklist_consumer = [
      { role = "DeveloperRead", kind = "topic", name = local.picklist_topic },
      { role = "DeveloperRead", kind = "group", name = local.picklist_consumer_group },
      { role = "DeveloperRead", kind = "subject", name = local.picklist_subject },
      { role = "DeveloperWrite", kind = "topic", name = local.picklist_dlq_topic },
      # Store staff's PICKING_STARTED, PICKED and READY, from the pick-list page; read back on
      # start to put the lists not yet ready back on the page (with the pick lists, as a
      # replay: status records it cannot read are passed over and counted, never
      # dead-lettered, so no write on the status dead-letter topic).
      { role = "DeveloperWrite", kind = "topic", name = local.order_status_topic },
      { role = "DeveloperRead", kind = "topic", name = local.order_status_topic, key_suffix = "/read" },
      { role = "DeveloperRead", kind = "subject", name = local.order_status_subject },
      # The restore starts from each order's latest state (written by the Order API).
      { role = "DeveloperRead", kind = "topic", name = local.order_state_topic },
      { role = "DeveloperRead", kind = "subject", name = local.order_state_subject },
    ]
    dlq_reader = [
      { role = "DeveloperRead", kind = "topic", name = local.orders_dlq_topic },
      { role = "DeveloperRead", kind = "topic", name = local.picklist_dlq_topic },
      { role = "DeveloperRead", kind = "topic", name = local.order_status_dlq_topic },
      { role = "DeveloperRead", kind = "group", name = "${local.dlq_reader_group_prefix}*" },
      { role = "DeveloperRead", kind = "subject", name = local.orders_subject },
      { role = "DeveloperRead", kind = "subject", name = local.picklist_subject },
      { role = "DeveloperRead", kind = "subject", name = local.order_status_subject },
    ]
  }

  # Least privilege for the manager that Terraform uses for topics and subjects: it owns the
  # project's topic and subject prefixes, nothing else on the cluster.
  manager_prefix = "grocery."
  manager_grants = [
    { role = "ResourceOwner", kind = "topic", name = "${local.manager_prefix}*" },
    { role = "ResourceOwner", kind = "subject", name = "${local.manager_prefix}*" },
  ]

  kafka_crn           = "${local.kafka.rbac_crn}/kafka=${local.kafka.id}"
  schema_registry_crn = data.confluent_schema_registry_cluster.this.resource_name

  # "<service>/<kind>=<name>" => the binding. The keys are known at plan time. A second role
  # on the same resource sets key_suffix (e.g. "/read") to keep its key distinct.
  service_role_bindings = merge([
    for service, grants in local.service_grants : {
      for g in grants : "${service}/${g.kind}=${g.name}${try(g.key_suffix, "")}" => {
        service = service
        role    = g.role
        crn     = g.kind == "subject" ? "${local.schema_registry_crn}/subject=${g.name}" : "${local.kafka_crn}/${g.kind}=${g.name}"
      }
    }
  ]...)

  # The principal of each service in the chosen variant (only one of the two maps is filled).
  service_principals = merge(
    { for service, pool in confluent_identity_pool.service : service => "User:${pool.id}" },
    { for service, account in confluent_service_account.service : service => "User:${account.id}" },
  )
}

resource "confluent_role_binding" "service" {
  for_each = local.service_role_bindings

  principal   = local.service_principals[each.value.service]
  role_name   = each.value.role
  crn_pattern = each.value.crn
}

# ---------------------------------------------------------------------------------------------
# The manager: a service account whose cluster-scoped API keys Terraform uses to create the
# topics, subject configs and schemas of main.tf. It is not used by any service.
# Its API key secrets end up in the Terraform state: keep the state in an encrypted backend
# with restricted access (versions.tf).
# ---------------------------------------------------------------------------------------------

resource "confluent_service_account" "manager" {
  display_name = "grocery-events-manager"
  description  = "Used by Terraform to manage the grocery-events topics and schemas"
}

resource "confluent_role_binding" "manager" {
  for_each = { for g in local.manager_grants : "${g.kind}=${g.name}" => g }

  principal   = "User:${confluent_service_account.manager.id}"
  role_name   = each.value.role
  crn_pattern = each.value.kind == "subject" ? "${local.schema_registry_crn}/subject=${each.value.name}" : "${local.kafka_crn}/${each.value.kind}=${each.value.name}"
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

  # The key must not be used before its owner may manage the topics.
  depends_on = [confluent_role_binding.manager]
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

  depends_on = [confluent_role_binding.manager]
}

# ---------------------------------------------------------------------------------------------
# auth_method = "oauth": the services authenticate with tokens of an external OIDC identity
# provider. Each service gets one identity pool whose CEL filter selects its tokens.
# ---------------------------------------------------------------------------------------------

resource "confluent_identity_provider" "oidc" {
  count = var.auth_method == "oauth" ? 1 : 0

  display_name = var.identity_provider_name
  description  = "OIDC identity provider of the grocery-events services"
  issuer       = var.oidc_issuer_uri
  jwks_uri     = var.oidc_jwks_uri

  lifecycle {
    precondition {
      condition     = var.oidc_issuer_uri != null && var.oidc_jwks_uri != null
      error_message = "auth_method \"oauth\" needs oidc_issuer_uri and oidc_jwks_uri."
    }
    precondition {
      condition     = length(setsubtract(keys(local.services), keys(var.identity_pool_filters))) == 0
      error_message = "auth_method \"oauth\" needs identity_pool_filters for ${join(", ", sort(setsubtract(keys(local.services), keys(var.identity_pool_filters))))}."
    }
  }
}

resource "confluent_identity_pool" "service" {
  for_each = var.auth_method == "oauth" ? local.services : {}

  identity_provider {
    id = confluent_identity_provider.oidc[0].id
  }
  display_name   = each.value.display_name
  description    = each.value.description
  identity_claim = var.identity_claim
  filter         = lookup(var.identity_pool_filters, each.key, "false")
}

# ---------------------------------------------------------------------------------------------
# auth_method = "api_keys": one service account per service, with a Kafka and a Schema
# Registry API key. The secrets are in the state and in the sensitive outputs
# service_api_keys and client_properties.
# ---------------------------------------------------------------------------------------------

resource "confluent_service_account" "service" {
  for_each = var.auth_method == "api_keys" ? local.services : {}

  display_name = each.value.display_name
  description  = each.value.description
}

resource "confluent_api_key" "service_kafka" {
  for_each = confluent_service_account.service

  display_name = "${each.value.display_name}-kafka"
  description  = "Kafka API key of ${each.value.display_name}"

  owner {
    id          = each.value.id
    api_version = each.value.api_version
    kind        = each.value.kind
  }

  managed_resource {
    id          = local.kafka.id
    api_version = local.kafka.api_version
    kind        = local.kafka.kind

    environment {
      id = local.environment.id
    }
  }
}

resource "confluent_api_key" "service_schema_registry" {
  for_each = confluent_service_account.service

  display_name = "${each.value.display_name}-schema-registry"
  description  = "Schema Registry API key of ${each.value.display_name}"

  owner {
    id          = each.value.id
    api_version = each.value.api_version
    kind        = each.value.kind
  }

  managed_resource {
    id          = data.confluent_schema_registry_cluster.this.id
    api_version = data.confluent_schema_registry_cluster.this.api_version
    kind        = data.confluent_schema_registry_cluster.this.kind

    environment {
      id = local.environment.id
    }
  }
}
