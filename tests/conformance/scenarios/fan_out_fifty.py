"""Fan-out over 50 items; item 17 fails its first attempt and succeeds on the retry."""

from ._fan_out import FLAKY, expected, fan_out_pipeline, outputs

ITEMS = [f"run-{i}" for i in range(50)]
ITEMS[17] = FLAKY
pipeline = fan_out_pipeline("fan_out_fifty", ITEMS)
EXPECTED = expected(ITEMS)
OUTPUTS = outputs(ITEMS)
FEATURES = (
    "task outputs (return values)",
    "mapped tasks (`map_over=`)",
    "retries (`@retries`, `retry_handler`)",
)  # rows of the README's capability matrix
