"""Background tasks: taskiq on RabbitMQ, fed by the transactional outbox (app.db.outbox).

An endpoint enqueues a task in its own transaction; the relay (relay.py) publishes
committed rows to RabbitMQ; the worker (scripts/worker.py) runs them, retries a
failure after a growing delay and dead-letters it after TASK_MAX_ATTEMPTS
(outcomes.py). Delivery is at least once, so every task is idempotent (once.py).
docs/tasks.md shows how to add one; docs/operations.md how to run and scale them.
"""
