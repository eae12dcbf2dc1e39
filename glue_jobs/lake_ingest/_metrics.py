"""CloudWatch metrics of a run, one datapoint per count, dimensioned by dataset."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

#: metric name -> (RunResult attribute, unit)
METRICS = {
    "RowsRead": ("rows_read", "Count"),
    "RowsWritten": ("rows_written", "Count"),
    "RowsQuarantined": ("rows_quarantined", "Count"),
    "RowsWarned": ("rows_warned", "Count"),
    "FilesIngested": ("files_ingested", "Count"),
    "FilesEmpty": ("files_empty", "Count"),
    "FilesFailed": ("files_failed", "Count"),
    "FilesPending": ("files_pending", "Count"),  # left for a later run: a backlog when it stays above 0
    "BytesRead": ("bytes_read", "Bytes"),
    "BytesWritten": ("bytes_written", "Bytes"),
    "DurationSeconds": ("seconds", "Seconds"),
}


def publish(cloudwatch: Any, namespace: str, dataset_id: str, values: dict[str, float], succeeded: bool) -> None:
    """Send the run's counts; a failure to publish is logged, never fatal to the run.

    A failed run sends no file counts: it recorded no file, and its counts of the planning it got
    through would mislead the alarms (a FilesPending of 0 from a run that stopped early would
    hide a backlog; its failed files are counted by the run that records them)."""
    dims = [{"Name": "DatasetId", "Value": dataset_id}]
    data = [{"MetricName": name, "Dimensions": dims, "Value": float(values.get(attr, 0) or 0), "Unit": unit}
            for name, (attr, unit) in METRICS.items() if succeeded or not name.startswith("Files")]
    data.append({"MetricName": "RunSucceeded" if succeeded else "RunFailed", "Dimensions": dims,
                 "Value": 1.0, "Unit": "Count"})
    try:
        for i in range(0, len(data), 20):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[i : i + 20])
    except Exception:  # metrics must not turn a good run into a failed one
        logger.exception("could not publish metrics for %s", dataset_id)
