"""Quick-start with the OFFICIAL inngest SDK: the same flow, proving official apps run unchanged."""
