"""Storage adapters implementing the engine ports."""
