"""Pure orchestrator core: no I/O, no clock reads, no environment."""
