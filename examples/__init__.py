"""Example pipelines; run one with `python run_examples.py <name>`."""
