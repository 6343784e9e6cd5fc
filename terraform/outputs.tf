# Every output that carries a secret is `sensitive = true` (OpenTofu refuses to plan one that
# is not), and only these do: service_api_keys and client_properties. `tofu output` shows
# them as (sensitive); read one with `tofu output -json client_properties | jq -r .fulfillment`.

output "environment_id" {
  description = "Id of the Confluent Cloud environment (env-...)."
  value       = local.environment.id
}

output "kafka_cluster_id" {
  description = "Logical id of the Kafka cluster (lkc-...): the logicalCluster SASL extension."
  value       = local.kafka.id
}

output "kafka_bootstrap_servers" {
  description = "Kafka bootstrap endpoint for bootstrap.servers (host:port, without the SASL_SSL:// prefix)."
  value       = local.bootstrap_servers
}

output "kafka_rest_endpoint" {
  description = "Kafka REST endpoint of the cluster."
  value       = local.kafka.rest_endpoint
}

output "schema_registry_id" {
  description = "Logical id of the Schema Registry cluster (lsrc-...): bearer.auth.logical.cluster."
  value       = data.confluent_schema_registry_cluster.this.id
}

output "schema_registry_url" {
  description = "Schema Registry endpoint for schema.registry.url."
  value       = data.confluent_schema_registry_cluster.this.rest_endpoint
}

output "identity_provider_id" {
  description = "Id of the OIDC identity provider registered in Confluent Cloud (op-...); null with auth_method = \"api_keys\"."
  value       = one(confluent_identity_provider.oidc[*].id)
}

output "identity_pool_ids" {
  description = "Identity pool id (pool-...) of each service: the identityPoolId SASL extension and bearer.auth.identity.pool.id. Empty with auth_method = \"api_keys\"."
  value       = { for service, pool in confluent_identity_pool.service : service => pool.id }
}

output "service_account_ids" {
  description = "Service account id (sa-...) of each service with auth_method = \"api_keys\"; empty with \"oauth\"."
  value       = { for service, account in confluent_service_account.service : service => account.id }
}

output "service_api_keys" {
  description = "Kafka and Schema Registry API key and secret of each service with auth_method = \"api_keys\"; empty with \"oauth\"."
  sensitive   = true
  value = {
    for service, key in confluent_api_key.service_kafka : service => {
      kafka_api_key              = key.id
      kafka_api_secret           = key.secret
      schema_registry_api_key    = confluent_api_key.service_schema_registry[service].id
      schema_registry_api_secret = confluent_api_key.service_schema_registry[service].secret
    }
  }
}

output "client_properties" {
  description = "A client.properties for each service. With auth_method = \"api_keys\" it holds the service's API secrets; with \"oauth\" the OAuth client id and secret are placeholders to fill in from your identity provider."
  sensitive   = true
  value       = local.client_properties
}

output "topic_names" {
  description = "Every topic the application uses, dead-letter topics included."
  value       = [for topic in confluent_kafka_topic.this : topic.topic_name]
}

output "subjects" {
  description = "Schema Registry subjects managed here (TopicNameStrategy)."
  value       = [for schema in confluent_schema.this : schema.subject_name]
}
