"""Fixtures for the SDK unit tests."""

from sdk_local_api import local_api

__all__ = ["local_api"]
