"""Market state in Redis: keys, loads and versioned commits."""
