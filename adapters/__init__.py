"""Adapters that compile a Task Engine pipeline for another orchestrator.

Import the one you need (`adapters.airflow`, `adapters.prefect`); each imports its orchestrator
lazily, so importing this package alone needs nothing beyond the core.
"""
