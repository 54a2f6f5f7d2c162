"""The pure core: sessions, instrument state, rules, index levels and the batch step; no I/O."""
