"""The seed's `tasks` example: BaseTask -> Task1 -> AlwaysFailsTask -> Task2.

Task1 simulates an HTTP call answering 200, 500 or 401 at random; set TASK_ENGINE_EXAMPLE_SEED
(or `python run_examples.py tasks --seed N`) to make the answers repeatable.
"""

import os
import random

from task_engine_core import Task, register, retries, skippable

_seed = os.environ.get("TASK_ENGINE_EXAMPLE_SEED")
_responses = random.Random(int(_seed) if _seed else None)


@register
class BaseTask(Task):
    def perform_task(self):
        print("Hello!")


@register(depends_on=BaseTask)
class Task1(Task):
    @retries(3)
    def perform_task(self):
        status = _responses.choice([200, 500, 401])
        if status != 200:
            raise Exception(f"Error {status}")
        print("Task1 completed successfully")

    def retry_handler(self, error):
        status = str(error).removeprefix("Error ")
        if status == "500":
            print("Task1 failed with error 500, retrying...")
            return True
        print(f"Task1 failed with error {status}, no retries")
        return False


@register(depends_on=Task1)
class AlwaysFailsTask(Task):
    @skippable
    @retries(3)
    def perform_task(self):
        print("AlwaysFailsTask failed")
        raise Exception("AlwaysFailsTask failed")

    def retry_handler(self, error):
        return True


@register(depends_on=AlwaysFailsTask)
class Task2(Task):
    def perform_task(self):
        print("Task2 completed successfully")
