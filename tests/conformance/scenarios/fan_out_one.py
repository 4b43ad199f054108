"""Fan-out over one item, which fails its first attempt and succeeds on the retry."""

from ._fan_out import FLAKY, expected, fan_out_pipeline, outputs

ITEMS = [FLAKY]
pipeline = fan_out_pipeline("fan_out_one", ITEMS)
EXPECTED = expected(ITEMS)
OUTPUTS = outputs(ITEMS)
FEATURES = (
    "task outputs (return values)",
    "mapped tasks (`map_over=`)",
    "retries (`@retries`, `retry_handler`)",
)  # rows of the README's capability matrix
