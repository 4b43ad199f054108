"""The seed's `jobs` example: tasks in two modules with a cross-module dependency.

DAG: Job2Task1 -> Job2Task2 -> Job1Task1 -> Job1Task2
"""

from . import job1, job2  # noqa: F401  (importing registers the tasks)
