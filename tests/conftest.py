"""Test configuration: the fixtures come from Soundhive's own pytest plugin (core.testing)."""
