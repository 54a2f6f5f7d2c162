"""The shells: load state, call the pure core, commit to Redis, publish to Kafka."""
