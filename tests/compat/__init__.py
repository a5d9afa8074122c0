"""Compatibility suite: official inngest SDK apps against a real `wayline dev`."""
