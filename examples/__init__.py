"""Example apps that use the official inngest SDK against Wayline."""
