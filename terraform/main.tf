# Names shared with the Rust code. They must agree with `grocery_events::topics` and the files
# in ../schemas: `cargo test -p xtask --test terraform_consistency` parses this directory and
# fails on any disagreement. Keep these plain strings, `${local.x}` interpolations, lists and
# objects so that the test can evaluate them; `tofu test` (tests/) checks what the plan makes
# of them.
locals {
  orders_topic       = "grocery.orders.v1"
  picklist_topic     = "grocery.picklist.v1"
  order_status_topic = "grocery.order-status.v1"
  order_state_topic  = "grocery.order-state.v1"
  dlq_suffix         = ".dlq"

  orders_dlq_topic       = "${local.orders_topic}${local.dlq_suffix}"
  picklist_dlq_topic     = "${local.picklist_topic}${local.dlq_suffix}"
  order_status_dlq_topic = "${local.order_status_topic}${local.dlq_suffix}"

  # Every topic the application uses, dead-letter topics included (grocery_events::topics::ALL).
  topic_names = [
    local.orders_topic,
    local.picklist_topic,
    local.order_status_topic,
    local.orders_dlq_topic,
    local.picklist_dlq_topic,
    local.order_status_dlq_topic,
    local.order_state_topic,
  ]

  # grocery_events::topics::PARTITIONS, for the topics and their dead-letter topics alike.
  partitions_count = 3

  # Dead-letter topics keep their records longer than the default 7 days so that an operator
  # has time to look at them and replay them.
  dlq_retention_ms = "1209600000" # 14 days

  # One confluent_kafka_topic each (for_each); the key is the resource instance key.
  topics = {
    orders       = { name = local.orders_topic, config = {} }
    picklist     = { name = local.picklist_topic, config = {} }
    orders_dlq   = { name = local.orders_dlq_topic, config = { "retention.ms" = local.dlq_retention_ms } }
    picklist_dlq = { name = local.picklist_dlq_topic, config = { "retention.ms" = local.dlq_retention_ms } }
    # The Order API rebuilds each order's history from this topic on start: it is the source
    # of truth, so its records are kept for good (the default 7 days would lose histories).
    order_status     = { name = local.order_status_topic, config = { "retention.ms" = "-1" } }
    order_status_dlq = { name = local.order_status_dlq_topic, config = { "retention.ms" = local.dlq_retention_ms } }
    # Each order's latest state and history, written by the Order API and read on start by the
    # Order API and picklist-consumer instead of every status. Compacted (one record per order)
    # and deleted past the pick lists' retention (7 days: an order untouched that long is
    # finished or abandoned; its statuses stay on order_status). min.compaction.lag.ms keeps a
    # record at least an hour before compaction may drop it, which the readers' hand-over to
    # the status topic relies on (docs/services.md, "Restarts"). Same partition count as
    # order_status: an order's state lands on the partition number of its statuses.
    order_state = { name = local.order_state_topic, config = {
      "cleanup.policy"        = "compact,delete"
      "retention.ms"          = "604800000"
      "min.compaction.lag.ms" = "3600000"
    } }
  }

  # TopicNameStrategy: the value subject of topic T is "T-value", its schema ../schemas/T.avsc.
  orders_subject       = "${local.orders_topic}-value"
  picklist_subject     = "${local.picklist_topic}-value"
  order_status_subject = "${local.order_status_topic}-value"
  order_state_subject  = "${local.order_state_topic}-value"

  # One confluent_subject_config and one confluent_schema each (for_each).
  subjects = {
    orders = {
      name          = local.orders_subject
      schema_file   = "${local.orders_topic}.avsc"
      compatibility = "BACKWARD"
      # Metadata and the order_has_lines rule (crates/grocery-events/src/contracts.rs).
      contract_file = "${local.orders_topic}.contract.json"
    }
    # FULL: store screens built against an older pick list read newer ones (and the other way
    # round) while a release rolls out.
    picklist = {
      name          = local.picklist_subject
      schema_file   = "${local.picklist_topic}.avsc"
      compatibility = "FULL"
      contract_file = null
    }
    order_status = {
      name          = local.order_status_subject
      schema_file   = "${local.order_status_topic}.avsc"
      compatibility = "BACKWARD"
      contract_file = null
    }
    order_state = {
      name          = local.order_state_subject
      schema_file   = "${local.order_state_topic}.avsc"
      compatibility = "BACKWARD"
      contract_file = null
    }
  }

  # Consumer groups and the transactional id prefix of the services.
  fulfillment_consumer_group          = "fulfillment-service"
  picklist_consumer_group             = "picklist-consumer"
  order_api_consumer_group            = "order-api"
  fulfillment_transactional_id_prefix = "fulfillment-service-"
  order_api_transactional_id_prefix   = "order-api-"
  # Operators' tools that read the dead-letter topics use consumer groups with this prefix.
  dlq_reader_group_prefix = "grocery-events-dlq-reader"
}

# ---------------------------------------------------------------------------------------------
# Environment (created, or an existing one by id)
# ---------------------------------------------------------------------------------------------

resource "confluent_environment" "this" {
  count = var.environment_id == null ? 1 : 0

  display_name = var.environment_name

  stream_governance {
    package = var.stream_governance_package
  }

  lifecycle {
    prevent_destroy = true
  }
}

data "confluent_environment" "existing" {
  count = var.environment_id == null ? 0 : 1

  id = var.environment_id
}

# ---------------------------------------------------------------------------------------------
# Kafka cluster (created, or an existing one by id)
# ---------------------------------------------------------------------------------------------

locals {
  # Availability when kafka_cluster_availability is null: the cheapest each type accepts.
  default_availability = {
    STANDARD   = "SINGLE_ZONE"
    ENTERPRISE = "LOW"
  }
  kafka_cluster_availability = coalesce(var.kafka_cluster_availability, local.default_availability[var.kafka_cluster_type])
}

resource "confluent_kafka_cluster" "this" {
  count = var.kafka_cluster_id == null ? 1 : 0

  display_name = var.kafka_cluster_name
  availability = local.kafka_cluster_availability
  cloud        = var.cloud
  region       = var.region

  dynamic "standard" {
    for_each = var.kafka_cluster_type == "STANDARD" ? [1] : []
    content {}
  }

  dynamic "enterprise" {
    for_each = var.kafka_cluster_type == "ENTERPRISE" ? [1] : []
    content {}
  }

  environment {
    id = local.environment.id
  }

  lifecycle {
    prevent_destroy = true

    precondition {
      condition     = var.kafka_cluster_type != "STANDARD" || contains(["SINGLE_ZONE", "MULTI_ZONE"], local.kafka_cluster_availability)
      error_message = "A STANDARD cluster's availability is SINGLE_ZONE or MULTI_ZONE, not ${local.kafka_cluster_availability}."
    }
    precondition {
      condition     = var.kafka_cluster_type != "ENTERPRISE" || contains(["HIGH", "LOW"], local.kafka_cluster_availability)
      error_message = "An ENTERPRISE cluster's availability is HIGH or LOW, not ${local.kafka_cluster_availability}."
    }
    precondition {
      condition     = var.kafka_cluster_type != "ENTERPRISE" || contains(["AWS", "AZURE"], var.cloud)
      error_message = "ENTERPRISE clusters are offered on AWS and AZURE, not ${var.cloud}."
    }
  }
}

data "confluent_kafka_cluster" "existing" {
  count = var.kafka_cluster_id == null ? 0 : 1

  id = var.kafka_cluster_id

  environment {
    id = local.environment.id
  }

  lifecycle {
    postcondition {
      condition     = length(self.basic) == 0
      error_message = "Kafka cluster ${var.kafka_cluster_id} is a BASIC cluster: Confluent Cloud has no role bindings on the topics, consumer groups and transactional ids of Basic clusters, which access.tf grants. Use a STANDARD or ENTERPRISE cluster."
    }
  }
}

# The created resource and the data source have different types, so a conditional expression
# cannot choose between the whole objects: pick each attribute from whichever one exists.
locals {
  environment = {
    id = one(concat(confluent_environment.this[*].id, data.confluent_environment.existing[*].id))
  }

  kafka = {
    id                 = one(concat(confluent_kafka_cluster.this[*].id, data.confluent_kafka_cluster.existing[*].id))
    api_version        = one(concat(confluent_kafka_cluster.this[*].api_version, data.confluent_kafka_cluster.existing[*].api_version))
    kind               = one(concat(confluent_kafka_cluster.this[*].kind, data.confluent_kafka_cluster.existing[*].kind))
    rbac_crn           = one(concat(confluent_kafka_cluster.this[*].rbac_crn, data.confluent_kafka_cluster.existing[*].rbac_crn))
    rest_endpoint      = one(concat(confluent_kafka_cluster.this[*].rest_endpoint, data.confluent_kafka_cluster.existing[*].rest_endpoint))
    bootstrap_endpoint = one(concat(confluent_kafka_cluster.this[*].bootstrap_endpoint, data.confluent_kafka_cluster.existing[*].bootstrap_endpoint))
  }
}

# ---------------------------------------------------------------------------------------------
# Schema Registry: provisioned with the environment's Stream Governance package; read it.
# ---------------------------------------------------------------------------------------------

# No depends_on: it would defer the read, and so every subject CRN built from resource_name,
# to apply time whenever the cluster or environment has a pending change, and plans would show
# the role bindings' CRNs as "known after apply". The reference to the environment id is the
# dependency that matters: a new environment's id is unknown until it exists, which defers
# the read by itself.
data "confluent_schema_registry_cluster" "this" {
  environment {
    id = local.environment.id
  }
}

# ---------------------------------------------------------------------------------------------
# Topics
# ---------------------------------------------------------------------------------------------

resource "confluent_kafka_topic" "this" {
  for_each = local.topics

  kafka_cluster {
    id = local.kafka.id
  }
  rest_endpoint = local.kafka.rest_endpoint

  topic_name       = each.value.name
  partitions_count = local.partitions_count
  config           = each.value.config

  credentials {
    key    = confluent_api_key.manager_kafka.id
    secret = confluent_api_key.manager_kafka.secret
  }

  lifecycle {
    prevent_destroy = true
  }
}

# ---------------------------------------------------------------------------------------------
# Subjects: compatibility first, then the schema. Schemas are registered here and only here:
# the services run with auto.register.schemas=false and only look schemas up.
# ---------------------------------------------------------------------------------------------

resource "confluent_subject_config" "this" {
  for_each = local.subjects

  schema_registry_cluster {
    id = data.confluent_schema_registry_cluster.this.id
  }
  rest_endpoint = data.confluent_schema_registry_cluster.this.rest_endpoint

  subject_name        = each.value.name
  compatibility_level = each.value.compatibility

  credentials {
    key    = confluent_api_key.manager_schema_registry.id
    secret = confluent_api_key.manager_schema_registry.secret
  }
}

resource "confluent_schema" "this" {
  for_each = local.subjects

  schema_registry_cluster {
    id = data.confluent_schema_registry_cluster.this.id
  }
  rest_endpoint = data.confluent_schema_registry_cluster.this.rest_endpoint

  subject_name = each.value.name
  format       = "AVRO"
  schema       = file("${path.module}/../schemas/${each.value.schema_file}")

  # The data contract (schemas/<topic>.contract.json): metadata properties and CEL domain
  # rules, as the clients read them back with the schema.
  dynamic "metadata" {
    for_each = each.value.contract_file == null ? [] : [jsondecode(file("${path.module}/../schemas/${each.value.contract_file}")).metadata]
    content {
      properties = metadata.value.properties
    }
  }

  dynamic "ruleset" {
    for_each = each.value.contract_file == null ? [] : [jsondecode(file("${path.module}/../schemas/${each.value.contract_file}")).ruleSet]
    content {
      dynamic "domain_rules" {
        for_each = ruleset.value.domainRules
        content {
          name       = domain_rules.value.name
          doc        = try(domain_rules.value.doc, null)
          kind       = domain_rules.value.kind
          mode       = domain_rules.value.mode
          type       = domain_rules.value.type
          expr       = domain_rules.value.expr
          params     = try(domain_rules.value.params, null)
          on_success = try(domain_rules.value.onSuccess, null)
          on_failure = try(domain_rules.value.onFailure, null)
        }
      }
    }
  }

  credentials {
    key    = confluent_api_key.manager_schema_registry.id
    secret = confluent_api_key.manager_schema_registry.secret
  }

  # The subject's compatibility level must be in force before the first version lands.
  depends_on = [confluent_subject_config.this]

  lifecycle {
    prevent_destroy = true
  }
}
