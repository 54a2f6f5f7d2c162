"""Alert delivery: one module per receiver."""
