"""The RabbitMQ bridge: the ingress consumer turns messages of routed queues into jobs,
the egress publisher sends every event to a topic exchange (docs/amqp.md)."""
