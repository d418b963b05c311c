"""Runnable examples (importable so the demo and the tests can build them)."""
