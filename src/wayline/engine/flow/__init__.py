"""Flow control: pure decisions over counters the stores update atomically."""
