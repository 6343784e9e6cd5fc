# `tofu test` (run by .ci/terraform-check): plans terraform/ against a mocked confluentinc/confluent
# provider (its real schema, no Confluent Cloud) and checks what the plan creates against the
# hand-written expectations of the expectations.

mock_provider "confluent" {
  mock_resource "confluent_environment" {
    defaults = {
      id            = "env-mock"
      resource_name = "crn://confluent.cloud/organization=org-mock/environment=env-mock"
    }
  }

  mock_resource "confluent_kafka_cluster" {
    defaults = {
      id                 = "lkc-mock"
      api_version        = "cmk/v2"
      kind               = "Cluster"
      rbac_crn           = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock"
      rest_endpoint      = "https://pkc-mock.us-east-2.aws.confluent.cloud:443"
      bootstrap_endpoint = "SASL_SSL://pkc-mock.us-east-2.aws.confluent.cloud:9092"
    }
  }

  mock_data "confluent_kafka_cluster" {
    defaults = {
      api_version        = "cmk/v2"
      kind               = "Cluster"
      rbac_crn           = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock"
      rest_endpoint      = "https://pkc-mock.us-east-2.aws.confluent.cloud:443"
      bootstrap_endpoint = "SASL_SSL://pkc-mock.us-east-2.aws.confluent.cloud:9092"
    }
  }

  mock_data "confluent_schema_registry_cluster" {
    defaults = {
      id            = "lsrc-mock"
      api_version   = "srcm/v3"
      kind          = "Cluster"
      resource_name = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock"
      rest_endpoint = "https://psrc-mock.us-east-2.aws.confluent.cloud"
    }
  }

  # The real provider validates an API key's owner id: sa-... or u-...
  mock_resource "confluent_service_account" {
    defaults = {
      id          = "sa-mock"
      api_version = "iam/v2"
      kind        = "ServiceAccount"
    }
  }
}

# The manager's service account gets an id of its own, so that the assertions can tell its
# role bindings and API keys from the services'. (An override names a resource, not one
# for_each instance: the services' accounts share the mock id sa-mock; in the "oauth" run each
# identity pool gets a random id of its own.)
override_resource {
  target = confluent_service_account.manager
  values = {
    id          = "sa-manager"
    api_version = "iam/v2"
    kind        = "ServiceAccount"
  }
}

variables {
  confluent_cloud_api_key    = "mock-cloud-api-key"
  confluent_cloud_api_secret = "mock-cloud-api-secret"
  oidc_issuer_uri            = "https://login.example.com/oauth2/default"
  oidc_jwks_uri              = "https://login.example.com/oauth2/default/v1/keys"
  identity_pool_filters = {
    order_producer    = "claims.sub == \"0oa-order-producer\""
    fulfillment       = "claims.sub == \"0oa-fulfillment-service\""
    picklist_consumer = "claims.sub == \"0oa-picklist-consumer\""
    dlq_reader        = "claims.sub == \"0oa-dlq-reader\""
  }
  # What the plan must contain, written out by hand (not computed from the configuration's
  # locals) for the mock values above. Test-file variables that the configuration does not
  # declare are only read by the assertions below.
  expected_topics = {
    "grocery.orders.v1"           = { partitions = 3, config = {} }
    "grocery.picklist.v1"         = { partitions = 3, config = {} }
    "grocery.orders.v1.dlq"       = { partitions = 3, config = { "retention.ms" = "1209600000" } }
    "grocery.picklist.v1.dlq"     = { partitions = 3, config = { "retention.ms" = "1209600000" } }
    "grocery.order-status.v1"     = { partitions = 3, config = { "retention.ms" = "-1" } }
    "grocery.order-status.v1.dlq" = { partitions = 3, config = { "retention.ms" = "1209600000" } }
    "grocery.order-state.v1"      = { partitions = 3, config = { "cleanup.policy" = "compact,delete", "min.compaction.lag.ms" = "3600000", "retention.ms" = "604800000" } }
  }
  expected_subjects = {
    "grocery.orders.v1-value"       = { compatibility = "BACKWARD", record = "io.groceryevents.Order" }
    "grocery.picklist.v1-value"     = { compatibility = "FULL", record = "io.groceryevents.PickList" }
    "grocery.order-status.v1-value" = { compatibility = "BACKWARD", record = "io.groceryevents.OrderStatus" }
    "grocery.order-state.v1-value"  = { compatibility = "BACKWARD", record = "io.groceryevents.OrderLatestState" }
  }
  # Every principal that gets role bindings (one identity pool or service account each).
  expected_services = ["dlq_reader", "fulfillment", "order_producer", "picklist_consumer"]
  # confluent_role_binding.service key => role and CRN pattern.
  expected_role_bindings = {
    "order_producer/topic=grocery.orders.v1"                  = { role = "DeveloperWrite", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.orders.v1" }
    "order_producer/subject=grocery.orders.v1-value"          = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.orders.v1-value" }
    "order_producer/topic=grocery.orders.v1.dlq"              = { role = "DeveloperWrite", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.orders.v1.dlq" }
    "fulfillment/topic=grocery.orders.v1"                     = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.orders.v1" }
    "fulfillment/group=fulfillment-service"                   = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/group=fulfillment-service" }
    "fulfillment/topic=grocery.picklist.v1"                   = { role = "DeveloperWrite", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.picklist.v1" }
    "fulfillment/topic=grocery.orders.v1.dlq"                 = { role = "DeveloperWrite", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.orders.v1.dlq" }
    "fulfillment/transactional-id=fulfillment-service-*"      = { role = "DeveloperWrite", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/transactional-id=fulfillment-service-*" }
    "fulfillment/subject=grocery.orders.v1-value"             = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.orders.v1-value" }
    "fulfillment/subject=grocery.picklist.v1-value"           = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.picklist.v1-value" }
    "picklist_consumer/topic=grocery.picklist.v1"             = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.picklist.v1" }
    "picklist_consumer/group=picklist-consumer"               = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/group=picklist-consumer" }
    "picklist_consumer/subject=grocery.picklist.v1-value"     = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.picklist.v1-value" }
    "picklist_consumer/topic=grocery.picklist.v1.dlq"         = { role = "DeveloperWrite", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.picklist.v1.dlq" }
    "dlq_reader/topic=grocery.orders.v1.dlq"                  = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.orders.v1.dlq" }
    "dlq_reader/topic=grocery.picklist.v1.dlq"                = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.picklist.v1.dlq" }
    "dlq_reader/group=grocery-events-dlq-reader*"             = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/group=grocery-events-dlq-reader*" }
    "dlq_reader/subject=grocery.orders.v1-value"              = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.orders.v1-value" }
    "dlq_reader/subject=grocery.picklist.v1-value"            = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.picklist.v1-value" }
    "order_producer/topic=grocery.order-status.v1"            = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.order-status.v1" }
    "order_producer/group=order-api"                          = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/group=order-api" }
    "order_producer/topic=grocery.orders.v1/read"             = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.orders.v1" }
    "order_producer/transactional-id=order-api-*"             = { role = "DeveloperWrite", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/transactional-id=order-api-*" }
    "order_producer/subject=grocery.order-status.v1-value"    = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.order-status.v1-value" }
    "fulfillment/topic=grocery.order-status.v1"               = { role = "DeveloperWrite", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.order-status.v1" }
    "fulfillment/subject=grocery.order-status.v1-value"       = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.order-status.v1-value" }
    "picklist_consumer/topic=grocery.order-status.v1"         = { role = "DeveloperWrite", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.order-status.v1" }
    "picklist_consumer/topic=grocery.order-status.v1/read"    = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.order-status.v1" }
    "picklist_consumer/subject=grocery.order-status.v1-value" = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.order-status.v1-value" }
    "dlq_reader/topic=grocery.order-status.v1.dlq"            = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.order-status.v1.dlq" }
    "dlq_reader/subject=grocery.order-status.v1-value"        = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.order-status.v1-value" }
    "order_producer/topic=grocery.order-state.v1"             = { role = "DeveloperWrite", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.order-state.v1" }
    "order_producer/topic=grocery.order-state.v1/read"        = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.order-state.v1" }
    "order_producer/subject=grocery.order-state.v1-value"     = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.order-state.v1-value" }
    "picklist_consumer/topic=grocery.order-state.v1"          = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.order-state.v1" }
    "picklist_consumer/subject=grocery.order-state.v1-value"  = { role = "DeveloperRead", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.order-state.v1-value" }
  }
  # The manager owns the grocery. prefixes only.
  expected_manager_role_bindings = {
    "topic=grocery.*"   = { role = "ResourceOwner", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock/topic=grocery.*" }
    "subject=grocery.*" = { role = "ResourceOwner", crn = "crn://confluent.cloud/organization=org-mock/environment=env-mock/schema-registry=lsrc-mock/subject=grocery.*" }
  }
}

run "oauth" {
  command = plan

  assert {
    condition     = jsonencode({ for t in confluent_kafka_topic.this : t.topic_name => { partitions = t.partitions_count, config = t.config } }) == jsonencode(var.expected_topics)
    error_message = "Topics differ from the expectations (name => partitions, config): planned ${jsonencode({ for t in confluent_kafka_topic.this : t.topic_name => { partitions = t.partitions_count, config = t.config } if try(jsonencode(var.expected_topics[t.topic_name]) != jsonencode({ partitions = t.partitions_count, config = t.config }), true) })}, expected ${jsonencode(var.expected_topics)}."
  }

  assert {
    condition     = { for c in confluent_subject_config.this : c.subject_name => c.compatibility_level } == { for s, e in var.expected_subjects : s => e.compatibility }
    error_message = "Subject compatibility levels differ from the expectations: planned ${jsonencode({ for c in confluent_subject_config.this : c.subject_name => c.compatibility_level })}."
  }

  assert {
    condition     = { for s in confluent_schema.this : s.subject_name => "${jsondecode(s.schema).namespace}.${jsondecode(s.schema).name}" if s.format == "AVRO" } == { for s, e in var.expected_subjects : s => e.record }
    error_message = "Registered schemas differ from the expectations (subject => Avro record): planned ${jsonencode({ for s in confluent_schema.this : s.subject_name => "${s.format} ${jsondecode(s.schema).namespace}.${jsondecode(s.schema).name}" })}."
  }

  assert {
    condition     = [for r in confluent_schema.this["orders"].ruleset[0].domain_rules : "${r.name} ${r.kind} ${r.mode} ${r.type} ${r.on_failure} ${r.params["dlq.topic"]}"] == ["order_has_lines CONDITION WRITE CEL DLQ grocery.orders.v1.dlq"] && confluent_schema.this["orders"].metadata[0].properties["contract"] == "order-lines" && length(confluent_schema.this["picklist"].ruleset) == 0
    error_message = "The order schema is registered with its contract (schemas/grocery.orders.v1.contract.json: order_has_lines, dead-lettered to grocery.orders.v1.dlq), the others without: planned ${jsonencode({ for k, s in confluent_schema.this : k => s.ruleset })}."
  }

  assert {
    condition     = jsonencode(sort(keys(confluent_identity_pool.service))) == jsonencode(var.expected_services) && length(confluent_service_account.service) == 0 && length(confluent_api_key.service_kafka) == 0
    error_message = "With auth_method = \"oauth\" every service gets an identity pool and no service account or API key: pools ${jsonencode(keys(confluent_identity_pool.service))}, service accounts ${jsonencode(keys(confluent_service_account.service))}."
  }

  assert {
    condition = alltrue([
      for service, pool in confluent_identity_pool.service :
      pool.filter == var.identity_pool_filters[service] && pool.identity_claim == "claims.sub" && pool.identity_provider[0].id == confluent_identity_provider.oidc[0].id
    ])
    error_message = "Identity pools with the wrong filter, claim or provider: ${jsonencode({ for service, pool in confluent_identity_pool.service : service => { filter = pool.filter, identity_claim = pool.identity_claim } if pool.filter != var.identity_pool_filters[service] || pool.identity_claim != "claims.sub" })}."
  }

  assert {
    condition     = confluent_identity_provider.oidc[0].issuer == var.oidc_issuer_uri && confluent_identity_provider.oidc[0].jwks_uri == var.oidc_jwks_uri
    error_message = "The identity provider's issuer or JWKS URI is not the one given."
  }

  assert {
    condition     = sort(keys(confluent_role_binding.service)) == sort(keys(var.expected_role_bindings))
    error_message = "Service role bindings: unexpected ${jsonencode(setsubtract(keys(confluent_role_binding.service), keys(var.expected_role_bindings)))}, missing ${jsonencode(setsubtract(keys(var.expected_role_bindings), keys(confluent_role_binding.service)))}."
  }

  assert {
    condition = alltrue([
      for key, want in var.expected_role_bindings :
      try(confluent_role_binding.service[key].role_name == want.role && confluent_role_binding.service[key].crn_pattern == want.crn, false)
    ])
    error_message = "Service role bindings with the wrong role or CRN: ${jsonencode({ for key, want in var.expected_role_bindings : key => { planned = try("${confluent_role_binding.service[key].role_name} on ${confluent_role_binding.service[key].crn_pattern}", "none"), expected = "${want.role} on ${want.crn}" } if !try(confluent_role_binding.service[key].role_name == want.role && confluent_role_binding.service[key].crn_pattern == want.crn, false) })}."
  }

  assert {
    condition = alltrue([
      for key, binding in confluent_role_binding.service :
      binding.principal == "User:${confluent_identity_pool.service[split("/", key)[0]].id}"
    ])
    error_message = "Service role bindings whose principal is not their service's identity pool: ${jsonencode([for key, binding in confluent_role_binding.service : key if binding.principal != "User:${confluent_identity_pool.service[split("/", key)[0]].id}"])}."
  }

  assert {
    condition = jsonencode({ for key, binding in confluent_role_binding.manager : key => { crn = binding.crn_pattern, role = binding.role_name } }) == jsonencode(var.expected_manager_role_bindings) && alltrue([
      for binding in confluent_role_binding.manager : binding.principal == "User:${confluent_service_account.manager.id}"
    ])
    error_message = "The manager's role bindings differ from the expectations: planned ${jsonencode({ for key, binding in confluent_role_binding.manager : key => "${binding.role_name} on ${binding.crn_pattern}" })}."
  }

  assert {
    condition     = output.service_api_keys == {} && !strcontains(output.client_properties.fulfillment, "sasl.password")
    error_message = "With auth_method = \"oauth\" no output holds an API secret."
  }

  assert {
    condition     = strcontains(output.client_properties.fulfillment, "sasl.oauthbearer.extensions=logicalCluster=lkc-mock,identityPoolId=${confluent_identity_pool.service["fulfillment"].id}")
    error_message = "fulfillment's client.properties does not name its cluster and identity pool."
  }

  assert {
    condition = alltrue([
      for service, text in output.client_properties : alltrue([
        for line in ["auto.register.schemas=false", "use.latest.version=false", "dlq.topic.suffix=.dlq"] : contains(split("\n", text), line)
      ])
    ]) && length(output.client_properties) == length(var.expected_services)
    error_message = "Every service's client.properties must say auto.register.schemas=false (services may only read subjects), use.latest.version=false and dlq.topic.suffix=.dlq (the dead-letter topics created here)."
  }
}

run "api_keys" {
  command = plan

  variables {
    auth_method           = "api_keys"
    oidc_issuer_uri       = null
    oidc_jwks_uri         = null
    identity_pool_filters = {}
  }

  assert {
    condition     = jsonencode(sort(keys(confluent_service_account.service))) == jsonencode(var.expected_services) && length(confluent_identity_pool.service) == 0 && length(confluent_identity_provider.oidc) == 0
    error_message = "With auth_method = \"api_keys\" every service gets a service account and there is no identity provider or pool: service accounts ${jsonencode(keys(confluent_service_account.service))}."
  }

  assert {
    condition = alltrue([
      for service, account in confluent_service_account.service :
      confluent_api_key.service_kafka[service].owner[0].id == account.id && confluent_api_key.service_kafka[service].managed_resource[0].id == "lkc-mock" &&
      confluent_api_key.service_schema_registry[service].owner[0].id == account.id && confluent_api_key.service_schema_registry[service].managed_resource[0].id == "lsrc-mock"
    ])
    error_message = "Every service account needs a Kafka API key for lkc-mock and a Schema Registry API key for lsrc-mock that it owns."
  }

  assert {
    condition = alltrue([
      for key, want in var.expected_role_bindings :
      try(confluent_role_binding.service[key].role_name == want.role && confluent_role_binding.service[key].crn_pattern == want.crn && confluent_role_binding.service[key].principal == "User:${confluent_service_account.service[split("/", key)[0]].id}", false)
    ]) && length(confluent_role_binding.service) == length(var.expected_role_bindings)
    error_message = "Service role bindings with the wrong role, CRN or principal (or extra ones): ${jsonencode({ for key, want in var.expected_role_bindings : key => try("${confluent_role_binding.service[key].role_name} on ${confluent_role_binding.service[key].crn_pattern}", "none") if !try(confluent_role_binding.service[key].role_name == want.role && confluent_role_binding.service[key].crn_pattern == want.crn, false) })}."
  }

  assert {
    condition     = issensitive(output.service_api_keys) && issensitive(output.client_properties)
    error_message = "The outputs service_api_keys and client_properties carry API secrets and must be sensitive."
  }

  assert {
    condition = alltrue([
      for service, key in confluent_api_key.service_kafka :
      output.service_api_keys[service].kafka_api_secret == key.secret && strcontains(output.client_properties[service], "sasl.password=${key.secret}") && strcontains(output.client_properties[service], "basic.auth.user.info=${confluent_api_key.service_schema_registry[service].id}:${confluent_api_key.service_schema_registry[service].secret}")
    ])
    error_message = "service_api_keys and client_properties must carry each service's own API keys."
  }

  assert {
    condition = alltrue([
      for service, text in output.client_properties : alltrue([
        for line in ["auto.register.schemas=false", "use.latest.version=false", "dlq.topic.suffix=.dlq"] : contains(split("\n", text), line)
      ])
    ]) && length(output.client_properties) == length(var.expected_services)
    error_message = "Every service's client.properties must say auto.register.schemas=false (services may only read subjects), use.latest.version=false and dlq.topic.suffix=.dlq (the dead-letter topics created here)."
  }

  assert {
    condition = alltrue([
      for secret in concat([for k in confluent_api_key.service_kafka : k.secret], [for k in confluent_api_key.service_schema_registry : k.secret]) :
      !strcontains(jsonencode([output.environment_id, output.kafka_cluster_id, output.kafka_bootstrap_servers, output.kafka_rest_endpoint, output.schema_registry_id, output.schema_registry_url, output.identity_provider_id, output.identity_pool_ids, output.service_account_ids, output.topic_names, output.subjects]), secret)
    ])
    error_message = "An output that is not sensitive holds an API secret."
  }

  assert {
    condition     = !issensitive(output.kafka_bootstrap_servers) && !issensitive(output.service_account_ids) && !issensitive(output.topic_names)
    error_message = "Outputs without secrets must stay readable (not sensitive)."
  }
}

run "existing_environment_and_cluster" {
  command = plan

  variables {
    environment_id   = "env-mock"
    kafka_cluster_id = "lkc-mock"
  }

  assert {
    condition     = length(confluent_environment.this) == 0 && length(confluent_kafka_cluster.this) == 0 && output.kafka_cluster_id == "lkc-mock"
    error_message = "With environment_id and kafka_cluster_id the existing ones are used and nothing is created."
  }

  assert {
    condition = alltrue([
      for key, want in var.expected_role_bindings :
      try(confluent_role_binding.service[key].crn_pattern == want.crn, false)
    ])
    error_message = "With an existing cluster the role bindings' CRNs differ from the expectations: ${jsonencode({ for key, binding in confluent_role_binding.service : key => binding.crn_pattern if try(binding.crn_pattern != var.expected_role_bindings[key].crn, true) })}."
  }
}

run "enterprise" {
  command = plan

  variables {
    kafka_cluster_type = "ENTERPRISE"
  }

  assert {
    condition     = confluent_kafka_cluster.this[0].availability == "LOW" && length(confluent_kafka_cluster.this[0].enterprise) == 1 && length(confluent_kafka_cluster.this[0].standard) == 0
    error_message = "An ENTERPRISE cluster defaults to LOW availability."
  }
}

run "basic_cluster_refused" {
  command = plan

  variables {
    kafka_cluster_type = "BASIC"
  }

  expect_failures = [var.kafka_cluster_type]
}

run "enterprise_single_zone_refused" {
  command = plan

  variables {
    kafka_cluster_type         = "ENTERPRISE"
    kafka_cluster_availability = "SINGLE_ZONE"
  }

  expect_failures = [confluent_kafka_cluster.this]
}

run "enterprise_on_gcp_refused" {
  command = plan

  variables {
    kafka_cluster_type = "ENTERPRISE"
    cloud              = "GCP"
    region             = "us-central1"
  }

  expect_failures = [confluent_kafka_cluster.this]
}

run "standard_high_refused" {
  command = plan

  variables {
    kafka_cluster_availability = "HIGH"
  }

  expect_failures = [confluent_kafka_cluster.this]
}

run "oauth_without_filters_refused" {
  command = plan

  variables {
    identity_pool_filters = {
      order_producer = "claims.sub == \"0oa-order-producer\""
    }
  }

  expect_failures = [confluent_identity_provider.oidc]
}
