"""Scenario pipelines for the conformance suite (one module each)."""
