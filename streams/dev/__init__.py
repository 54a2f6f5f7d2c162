"""Development tooling: embedded broker and Redis, demo, bench; never imported by a worker."""
