"""Eight tasks in a chain for partial runs and --resume: load_warehouse fails until WAREHOUSE_UP=1.

python -m task_engine_core run examples.partial_runs                 # fails at task 5 of 8
WAREHOUSE_UP=1 python -m task_engine_core run examples.partial_runs --resume   # runs 5-8
python -m task_engine_core run examples.partial_runs --tags report --dry-run
"""

import os

from task_engine_core import register


@register(tags="ingest")
def download():
    print("downloaded 3 files")


@register(depends_on=download, tags="ingest")
def unpack():
    print("unpacked 3 files")


@register(depends_on=unpack, tags="ingest")
def validate():
    print("1200 rows valid")


@register(depends_on=validate)
def transform():
    print("1200 rows transformed")


@register(depends_on=transform, tags="warehouse")
def load_warehouse():
    if os.environ.get("WAREHOUSE_UP") != "1":
        raise ConnectionError("warehouse at db.internal:5432 refused the connection")
    print("1200 rows loaded")


@register(depends_on=load_warehouse, tags="warehouse")
def refresh_views():
    print("4 views refreshed")


@register(depends_on=refresh_views, tags="report")
def build_report():
    print("report built")


@register(depends_on=build_report, tags="report")
def notify():
    print("team notified")
