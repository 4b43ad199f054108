"""Job 2: two tasks that Job 1 depends on."""

from task_engine_core import Task, register


@register
class Job2Task1(Task):
    def perform_task(self):
        print("Hello from Job2, Task1!")


@register(depends_on=Job2Task1)
class Job2Task2(Task):
    def perform_task(self):
        print("Hello from Job2, Task2!")
