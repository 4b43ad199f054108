"""Task outputs through Airflow XCom: what may be pushed, where large outputs go, how inputs are pulled.

A task's output is its Airflow task's return value, so Airflow pushes it as the `return_value`
XCom and the UI shows it. Before that the adapter checks it the way Airflow will store it
(`airflow.sdk.serde.serialize`, then JSON): a value XCom cannot serialise is an
`OutputTransferError` naming the task and the type, raised in that task, not a serializer
traceback in a later one. An output whose serialised form is larger than `max_xcom_bytes` goes to
the DAG's `output_store` (any object with `put(key, value) -> str` and `get(reference)`;
`FileOutputStore(directory)` pickles to a directory every worker can read) and XCom carries only
a small reference; without a store such an output is an error saying what to configure.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from task_engine_core.backend import OutputTransferError

__all__ = ["OutputStore", "FileOutputStore", "DEFAULT_MAX_XCOM_BYTES", "XComTransfer"]

#: Outputs whose serialised form is larger go to the output store (the metadata database holds XComs).
DEFAULT_MAX_XCOM_BYTES = 64 * 1024
_REFERENCE = "__task_engine_output__"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-\[\]]+")


class OutputStore(Protocol):
    """Where outputs too large for XCom go; XCom then carries the reference `put` returned."""

    def put(self, key: str, value: Any) -> str:
        """Keep `value` under `key` (dag, run, task and map index); return a reference to it."""

    def get(self, reference: str) -> Any:
        """The value `put` kept under `reference`."""


class FileOutputStore:
    """Pickles each large output to a file under `directory` (a path every Airflow worker can read)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def put(self, key: str, value: Any) -> str:
        """Write `value` to `<directory>/<key>.pickle` atomically; the reference is the file name."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = _UNSAFE.sub("_", key) + ".pickle"
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        with os.fdopen(descriptor, "wb") as file:
            pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, self.directory / name)
        return name

    def get(self, reference: str) -> Any:
        """Read the output written under `reference`."""
        with open(self.directory / Path(reference).name, "rb") as file:
            return pickle.load(file)

    def __repr__(self) -> str:
        return f"FileOutputStore({str(self.directory)!r})"


class XComTransfer:
    """Turns outputs into XCom values and pulled XComs back into outputs, for one DAG."""

    def __init__(self, max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES, store: OutputStore | None = None) -> None:
        self.max_xcom_bytes = max_xcom_bytes
        self.store = store

    def to_xcom(self, task: str, value: Any, key: str, mapped_over: bool = False) -> Any:
        """The value to return from the Airflow task for output `value` of `task` (None stays None)."""
        if value is None:
            return None
        from airflow.sdk.serde import serialize

        try:
            size = len(json.dumps(serialize(value)).encode("utf-8"))
        except Exception as error:
            raise OutputTransferError(
                task,
                value,
                "Airflow XCom",
                f"it cannot be serialised ({type(error).__name__}: {error}); return JSON-like data (dict, list, "
                f"str, numbers), a dataclass, or an object with serialize()/deserialize(); keep secrets in the "
                f"context, not in outputs",
            ) from error
        if size <= self.max_xcom_bytes:
            return value
        if mapped_over or self.store is None:
            why = (
                "a task maps over it, and Airflow expands only over a list held in XCom"
                if mapped_over
                else "no output store is configured"
            )
            raise OutputTransferError(
                task,
                value,
                "Airflow XCom",
                f"its serialised form is {size} bytes, over max_xcom_bytes={self.max_xcom_bytes}, and {why}; pass "
                f"to_airflow_dag(output_store=FileOutputStore('/shared/dir')) or raise max_xcom_bytes",
            )
        return {_REFERENCE: self.store.put(key, value)}

    def from_xcom(self, value: Any) -> Any:
        """An output from a pulled XCom value: a store reference is read back."""
        if isinstance(value, Mapping) and set(value) == {_REFERENCE}:
            if self.store is None:
                raise OutputTransferError(
                    "?", value, "this DAG", "the XCom refers to an output store, but the DAG has no output_store"
                )
            return self.store.get(value[_REFERENCE])
        return value

    def pull(self, ti: Any, upstream: Sequence[str], mapped: Mapping[str, str]) -> dict[str, Any]:
        """The outputs of `upstream` from XCom: a mapped upstream gives the list of its instances' outputs."""
        outputs: dict[str, Any] = {}
        for parent in upstream:
            if parent in mapped:
                # As many instances as items in the list it maps over (none: Airflow ran no instance).
                count = len(ti.xcom_pull(task_ids=mapped[parent], map_indexes=-1) or ())
                pulled = ti.xcom_pull(task_ids=parent, map_indexes=list(range(count))) if count else []
                value = [self.from_xcom(item) for item in pulled]
            else:
                value = self.from_xcom(ti.xcom_pull(task_ids=parent, map_indexes=-1))
            if value is not None:
                outputs[parent] = value
        return outputs


def item_kwargs(item: Any) -> dict[str, Any]:
    """The op_kwargs of one mapped Airflow task instance (used with XComArg.map for `expand`)."""
    return {ITEM_KWARG: item}


#: The keyword argument through which a mapped Airflow task instance receives its item.
ITEM_KWARG = "task_engine_item"
