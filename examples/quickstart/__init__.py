"""Quick-start: a welcome-email flow with a durable sleep and a conditional nudge."""
