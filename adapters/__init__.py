"""Adapters that compile a Task Engine pipeline for an orchestrator (Airflow, Prefect)."""
