"""`verdict forward`: consume MQ messages, route each with the route tables, publish it to every destination system.

    consumer.py   the consume → route → publish → confirm → ack loop on one broker connection (pika, async)
    mapping.py    AMQP message → routing.Message, the idempotency key, and the headers of what is published
    pending.py    the book-keeping of one source message: its publishes, their confirms and returns, its attempts
    config.py     the settings of `verdict forward`
    observe.py    Prometheus metrics and /healthz on --metrics-port

Dependencies point one way: forward → routing, service (catalog, store opener, metrics, decision log) → store.
Nothing but the CLI imports this package. docs/forwarding.md describes the topology and the guarantees.
"""
