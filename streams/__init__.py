"""Where Kafka meets the engines: the Faust app, agents, worker counts, CLI; dev tooling in dev/."""
