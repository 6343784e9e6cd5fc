# The resources that were written out once per topic, subject, pool and binding before they
# became for_each instances: these blocks move an existing state to the new addresses, so that
# the upgrade plans no destroy (topics and schemas have prevent_destroy) and no gap in access.
# The manager's former CloudClusterAdmin binding (manager_cluster_admin) is not moved: it is
# replaced by ResourceOwner on the grocery.* topics, and the plan destroys it.

moved {
  from = confluent_kafka_topic.orders
  to   = confluent_kafka_topic.this["orders"]
}

moved {
  from = confluent_kafka_topic.picklist
  to   = confluent_kafka_topic.this["picklist"]
}

moved {
  from = confluent_kafka_topic.orders_dlq
  to   = confluent_kafka_topic.this["orders_dlq"]
}

moved {
  from = confluent_kafka_topic.picklist_dlq
  to   = confluent_kafka_topic.this["picklist_dlq"]
}

moved {
  from = confluent_subject_config.orders
  to   = confluent_subject_config.this["orders"]
}

moved {
  from = confluent_subject_config.picklist
  to   = confluent_subject_config.this["picklist"]
}

moved {
  from = confluent_schema.orders
  to   = confluent_schema.this["orders"]
}

moved {
  from = confluent_schema.picklist
  to   = confluent_schema.this["picklist"]
}

moved {
  from = confluent_identity_provider.oidc
  to   = confluent_identity_provider.oidc[0]
}

moved {
  from = confluent_identity_pool.order_producer
  to   = confluent_identity_pool.service["order_producer"]
}

moved {
  from = confluent_identity_pool.fulfillment
  to   = confluent_identity_pool.service["fulfillment"]
}

moved {
  from = confluent_identity_pool.picklist_consumer
  to   = confluent_identity_pool.service["picklist_consumer"]
}

moved {
  from = confluent_role_binding.manager_subjects_owner
  to   = confluent_role_binding.manager["subject=grocery.*"]
}

moved {
  from = confluent_role_binding.order_producer_orders_write
  to   = confluent_role_binding.service["order_producer/topic=grocery.orders.v1"]
}

moved {
  from = confluent_role_binding.order_producer_orders_subject_read
  to   = confluent_role_binding.service["order_producer/subject=grocery.orders.v1-value"]
}

moved {
  from = confluent_role_binding.fulfillment_orders_read
  to   = confluent_role_binding.service["fulfillment/topic=grocery.orders.v1"]
}

moved {
  from = confluent_role_binding.fulfillment_group_read
  to   = confluent_role_binding.service["fulfillment/group=fulfillment-service"]
}

moved {
  from = confluent_role_binding.fulfillment_picklist_write
  to   = confluent_role_binding.service["fulfillment/topic=grocery.picklist.v1"]
}

moved {
  from = confluent_role_binding.fulfillment_orders_dlq_write
  to   = confluent_role_binding.service["fulfillment/topic=grocery.orders.v1.dlq"]
}

moved {
  from = confluent_role_binding.fulfillment_transactional_id_write
  to   = confluent_role_binding.service["fulfillment/transactional-id=fulfillment-service-*"]
}

moved {
  from = confluent_role_binding.fulfillment_orders_subject_read
  to   = confluent_role_binding.service["fulfillment/subject=grocery.orders.v1-value"]
}

moved {
  from = confluent_role_binding.fulfillment_picklist_subject_read
  to   = confluent_role_binding.service["fulfillment/subject=grocery.picklist.v1-value"]
}

moved {
  from = confluent_role_binding.picklist_consumer_picklist_read
  to   = confluent_role_binding.service["picklist_consumer/topic=grocery.picklist.v1"]
}

moved {
  from = confluent_role_binding.picklist_consumer_group_read
  to   = confluent_role_binding.service["picklist_consumer/group=picklist-consumer"]
}

moved {
  from = confluent_role_binding.picklist_consumer_picklist_subject_read
  to   = confluent_role_binding.service["picklist_consumer/subject=grocery.picklist.v1-value"]
}

moved {
  from = confluent_role_binding.picklist_consumer_picklist_dlq_write
  to   = confluent_role_binding.service["picklist_consumer/topic=grocery.picklist.v1.dlq"]
}
