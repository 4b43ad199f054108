"""Job 1: its first task depends on a task of Job 2, in another module."""

from task_engine_core import Task, register

from .job2 import Job2Task2


@register(depends_on=Job2Task2)
class Job1Task1(Task):
    def perform_task(self):
        print("Hello from Job1, Task1!")


@register(depends_on=Job1Task1)
class Job1Task2(Task):
    def perform_task(self):
        print("Hello from Job1, Task2!")
