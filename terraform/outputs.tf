# Everything a service needs for its client.properties except its own OAuth client secret
# (which lives in the identity provider) — no output here is a secret.

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
  value       = replace(local.kafka.bootstrap_endpoint, "SASL_SSL://", "")
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
  description = "Id of the OIDC identity provider registered in Confluent Cloud (op-...)."
  value       = confluent_identity_provider.oidc.id
}

output "identity_pool_ids" {
  description = "Identity pool id (pool-...) of each role: the identityPoolId SASL extension and bearer.auth.identity.pool.id."
  value = {
    order_producer    = confluent_identity_pool.order_producer.id
    fulfillment       = confluent_identity_pool.fulfillment.id
    picklist_consumer = confluent_identity_pool.picklist_consumer.id
  }
}

output "topic_names" {
  description = "Every topic the application uses, dead-letter topics included."
  value       = local.topic_names
}

output "subjects" {
  description = "Schema Registry subjects managed here (TopicNameStrategy)."
  value       = [confluent_schema.orders.subject_name, confluent_schema.picklist.subject_name]
}
