# Names shared with the Rust code. They must agree with `grocery_events::topics` and the files
# in ../schemas: `cargo test -p xtask --test terraform_consistency` parses this directory and
# fails on any disagreement. Keep these plain strings and `${local.x}` interpolations so that
# the test can evaluate them.
locals {
  orders_topic   = "grocery.orders.v1"
  picklist_topic = "grocery.picklist.v1"
  dlq_suffix     = ".dlq"

  orders_dlq_topic   = "${local.orders_topic}${local.dlq_suffix}"
  picklist_dlq_topic = "${local.picklist_topic}${local.dlq_suffix}"

  # Every topic the application uses, dead-letter topics included (grocery_events::topics::ALL).
  topic_names = [
    local.orders_topic,
    local.picklist_topic,
    local.orders_dlq_topic,
    local.picklist_dlq_topic,
  ]

  # grocery_events::topics::PARTITIONS, for the topics and their dead-letter topics alike.
  partitions_count = 3

  # TopicNameStrategy: the value subject of topic T is "T-value".
  orders_subject   = "${local.orders_topic}-value"
  picklist_subject = "${local.picklist_topic}-value"

  # Consumer groups and the transactional id prefix of the services.
  fulfillment_consumer_group          = "fulfillment-service"
  picklist_consumer_group             = "picklist-consumer"
  fulfillment_transactional_id_prefix = "fulfillment-service-"

  # Dead-letter topics keep their records longer than the default 7 days so that an operator
  # has time to look at them and replay them.
  dlq_retention_ms = "1209600000" # 14 days
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

resource "confluent_kafka_cluster" "this" {
  count = var.kafka_cluster_id == null ? 1 : 0

  display_name = var.kafka_cluster_name
  availability = var.kafka_cluster_availability
  cloud        = var.cloud
  region       = var.region

  dynamic "basic" {
    for_each = var.kafka_cluster_type == "BASIC" ? [1] : []
    content {}
  }

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
  }
}

data "confluent_kafka_cluster" "existing" {
  count = var.kafka_cluster_id == null ? 0 : 1

  id = var.kafka_cluster_id

  environment {
    id = local.environment.id
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

data "confluent_schema_registry_cluster" "this" {
  environment {
    id = local.environment.id
  }

  # When the environment is created in the same apply, its Schema Registry cluster must exist
  # before it is looked up.
  depends_on = [
    confluent_environment.this,
    confluent_kafka_cluster.this,
  ]
}

# ---------------------------------------------------------------------------------------------
# Topics
# ---------------------------------------------------------------------------------------------

resource "confluent_kafka_topic" "orders" {
  kafka_cluster {
    id = local.kafka.id
  }
  rest_endpoint = local.kafka.rest_endpoint

  topic_name       = local.orders_topic
  partitions_count = local.partitions_count

  credentials {
    key    = confluent_api_key.manager_kafka.id
    secret = confluent_api_key.manager_kafka.secret
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "confluent_kafka_topic" "picklist" {
  kafka_cluster {
    id = local.kafka.id
  }
  rest_endpoint = local.kafka.rest_endpoint

  topic_name       = local.picklist_topic
  partitions_count = local.partitions_count

  credentials {
    key    = confluent_api_key.manager_kafka.id
    secret = confluent_api_key.manager_kafka.secret
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "confluent_kafka_topic" "orders_dlq" {
  kafka_cluster {
    id = local.kafka.id
  }
  rest_endpoint = local.kafka.rest_endpoint

  topic_name       = local.orders_dlq_topic
  partitions_count = local.partitions_count

  config = {
    "retention.ms" = local.dlq_retention_ms
  }

  credentials {
    key    = confluent_api_key.manager_kafka.id
    secret = confluent_api_key.manager_kafka.secret
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "confluent_kafka_topic" "picklist_dlq" {
  kafka_cluster {
    id = local.kafka.id
  }
  rest_endpoint = local.kafka.rest_endpoint

  topic_name       = local.picklist_dlq_topic
  partitions_count = local.partitions_count

  config = {
    "retention.ms" = local.dlq_retention_ms
  }

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

resource "confluent_subject_config" "orders" {
  schema_registry_cluster {
    id = data.confluent_schema_registry_cluster.this.id
  }
  rest_endpoint = data.confluent_schema_registry_cluster.this.rest_endpoint

  subject_name        = local.orders_subject
  compatibility_level = "BACKWARD"

  credentials {
    key    = confluent_api_key.manager_schema_registry.id
    secret = confluent_api_key.manager_schema_registry.secret
  }
}

resource "confluent_subject_config" "picklist" {
  schema_registry_cluster {
    id = data.confluent_schema_registry_cluster.this.id
  }
  rest_endpoint = data.confluent_schema_registry_cluster.this.rest_endpoint

  subject_name        = local.picklist_subject
  compatibility_level = "BACKWARD"

  credentials {
    key    = confluent_api_key.manager_schema_registry.id
    secret = confluent_api_key.manager_schema_registry.secret
  }
}

resource "confluent_schema" "orders" {
  schema_registry_cluster {
    id = data.confluent_schema_registry_cluster.this.id
  }
  rest_endpoint = data.confluent_schema_registry_cluster.this.rest_endpoint

  subject_name = local.orders_subject
  format       = "AVRO"
  schema       = file("${path.module}/../schemas/grocery.orders.v1.avsc")

  credentials {
    key    = confluent_api_key.manager_schema_registry.id
    secret = confluent_api_key.manager_schema_registry.secret
  }

  # The subject's BACKWARD compatibility must be in force before the first version lands.
  depends_on = [confluent_subject_config.orders]

  lifecycle {
    prevent_destroy = true
  }
}

resource "confluent_schema" "picklist" {
  schema_registry_cluster {
    id = data.confluent_schema_registry_cluster.this.id
  }
  rest_endpoint = data.confluent_schema_registry_cluster.this.rest_endpoint

  subject_name = local.picklist_subject
  format       = "AVRO"
  schema       = file("${path.module}/../schemas/grocery.picklist.v1.avsc")

  credentials {
    key    = confluent_api_key.manager_schema_registry.id
    secret = confluent_api_key.manager_schema_registry.secret
  }

  depends_on = [confluent_subject_config.picklist]

  lifecycle {
    prevent_destroy = true
  }
}
