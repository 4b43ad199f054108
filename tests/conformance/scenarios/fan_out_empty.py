"""Fan-out over an empty list: no instance runs, the mapped task succeeds with [] and its downstream runs."""

from ._fan_out import expected, fan_out_pipeline, outputs

ITEMS: list = []
pipeline = fan_out_pipeline("fan_out_empty", ITEMS)
EXPECTED = expected(ITEMS)
OUTPUTS = outputs(ITEMS)
FEATURES = ("mapped tasks (`map_over=`)",)  # rows of the README's capability matrix
DIFFERENCES = {
    "airflow": "Airflow shows a task mapped over an empty list as skipped; the engine's result is SUCCESS with [] and its downstreams run",
}
