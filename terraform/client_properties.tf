# The client.properties of each service, for the sensitive output client_properties. Never
# commit one that holds secrets; mount it from your secret store.

locals {
  bootstrap_servers = replace(local.kafka.bootstrap_endpoint, "SASL_SSL://", "")
  schema_registry   = data.confluent_schema_registry_cluster.this

  client_properties_api_keys = {
    for service, key in confluent_api_key.service_kafka : service => join("\n", [
      "bootstrap.servers=${local.bootstrap_servers}",
      "security.protocol=SASL_SSL",
      "sasl.mechanisms=PLAIN",
      "sasl.username=${key.id}",
      "sasl.password=${key.secret}",
      "",
      "schema.registry.url=${local.schema_registry.rest_endpoint}",
      "basic.auth.credentials.source=USER_INFO",
      "basic.auth.user.info=${confluent_api_key.service_schema_registry[service].id}:${confluent_api_key.service_schema_registry[service].secret}",
      "",
    ])
  }

  client_properties_oauth = {
    for service, pool in confluent_identity_pool.service : service => join("\n", [
      "bootstrap.servers=${local.bootstrap_servers}",
      "security.protocol=SASL_SSL",
      "sasl.mechanisms=OAUTHBEARER",
      "sasl.oauthbearer.method=oidc",
      "sasl.oauthbearer.token.endpoint.url=<token endpoint of your identity provider>",
      "sasl.oauthbearer.client.id=<OAuth client id of ${service}>",
      "sasl.oauthbearer.client.secret=<OAuth client secret of ${service}>",
      "sasl.oauthbearer.extensions=logicalCluster=${local.kafka.id},identityPoolId=${pool.id}",
      "",
      "schema.registry.url=${local.schema_registry.rest_endpoint}",
      "bearer.auth.credentials.source=OAUTHBEARER",
      "bearer.auth.issuer.endpoint.url=<token endpoint of your identity provider>",
      "bearer.auth.client.id=<OAuth client id of ${service}>",
      "bearer.auth.client.secret=<OAuth client secret of ${service}>",
      "bearer.auth.logical.cluster=${local.schema_registry.id}",
      "bearer.auth.identity.pool.id=${pool.id}",
      "",
    ])
  }

  client_properties = merge(local.client_properties_api_keys, local.client_properties_oauth)
}
