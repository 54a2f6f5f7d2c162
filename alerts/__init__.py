"""From a decoded tick to a delivered alert: pure core, Redis store, engine shells, delivery."""
