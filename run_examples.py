"""Run an example pipeline: `python run_examples.py <example> [--seed N] [--workers N]`."""

from __future__ import annotations

import argparse
import os
import sys

from task_engine_core import PipelineExecutor
from task_engine_core.backend import load_pipeline


def main(argv: list[str] | None = None) -> None:
    """Load `examples.<name>` and run it; a failing task ends with its traceback, as in the seed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("example", help="module name under examples/, e.g. tasks or jobs")
    parser.add_argument("--seed", type=int, help="seed for examples that use randomness")
    parser.add_argument("--workers", type=int, default=1, help="worker threads (default 1)")
    parser.add_argument("--context", help="context YAML file (default: task_engine.yml here, if present)")
    args = parser.parse_args(argv)
    if args.seed is not None:
        os.environ["TASK_ENGINE_EXAMPLE_SEED"] = str(args.seed)
    pipeline = load_pipeline(f"examples.{args.example}")
    PipelineExecutor(pipeline, workers=args.workers, context=args.context).run()


if __name__ == "__main__":
    sys.exit(main())
