# The client.properties of each service, for the sensitive output client_properties. Never
# commit one that holds secrets; mount it from your secret store.

locals {
  bootstrap_servers = replace(local.kafka.bootstrap_endpoint, "SASL_SSL://", "")
  schema_registry   = data.confluent_schema_registry_cluster.this

  # What every service needs under the role bindings of access.tf, whichever auth_method:
  # - auto.register.schemas=false: the subjects and their schemas are this configuration's
  #   (main.tf registers ../schemas/*.avsc) and services may only read them (DeveloperRead), so
  #   a service looks its schema up instead of registering it; with the library's default
  #   (true) its first send registers and the registry answers 403.
  # - use.latest.version=false (the default, said here): a service writes the version its
  #   types were generated from, the one registered from the same files, which the lookup
  #   finds; an older build still finds its own version after the schema evolves. Set it to
  #   true only for a build whose schema was never registered, to write the latest version.
  #   order-producer writes its orders with the latest registered version whatever this says
  #   (its order contract's rule order_has_lines runs only then; services/order-producer's
  #   contract.rs), so the order schema must be registered with its contract (main.tf does).
  # - dlq.topic.suffix: the dead-letter topics main.tf creates (`<topic>.dlq`), on which the
  #   services have DeveloperWrite.
  client_settings = [
    "auto.register.schemas=false",
    "use.latest.version=false",
    "dlq.topic.suffix=${local.dlq_suffix}",
    "",
  ]

  client_properties_api_keys = {
    for service, key in confluent_api_key.service_kafka : service => join("\n", concat([
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
    ], local.client_settings))
  }

  client_properties_oauth = {
    for service, pool in confluent_identity_pool.service : service => join("\n", concat([
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
    ], local.client_settings))
  }

  client_properties = merge(local.client_properties_api_keys, local.client_properties_oauth)
}
