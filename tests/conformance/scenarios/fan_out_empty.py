"""Fan-out over an empty list: no instance runs, the mapped task succeeds with [] and its downstream runs."""

from ._fan_out import expected, fan_out_pipeline, outputs

ITEMS: list = []
pipeline = fan_out_pipeline("fan_out_empty", ITEMS)
EXPECTED = expected(ITEMS)
OUTPUTS = outputs(ITEMS)
