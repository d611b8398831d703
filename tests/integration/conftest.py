"""Fixtures shared by the integration tests."""

from tests.integration.cli_support import db

__all__ = ["db"]
