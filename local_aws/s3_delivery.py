"""Invocation-log records as Bedrock delivers them to S3: gzip JSON lines under
`[prefix/]AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/`, one folder per UTC hour, a few
objects an hour, and the permission-check marker Bedrock writes when logging is set up (outside the hour folders).
The demo, the tests and the benchmark write the same records here and to CloudWatch Logs."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from lambda_function.sources.s3logs import logs_prefix

MARKER = "amazon-bedrock-logs-permission-check"


def _when(record: dict[str, Any]) -> datetime:
    return datetime.strptime(record["timestamp"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def delivered_objects(
    records: Iterable[dict[str, Any]], *, objects_per_hour: int = 2, late_seconds: int = 0
) -> dict[str, list[str]]:
    """The records' lines by the hour folder (`YYYY/MM/DD/HH/name.json.gz`) they are delivered to: each hour's
    records split over `objects_per_hour` objects in time order. A record within `late_seconds` of its hour's end
    is delivered in the next hour's folder, as a batch written after the hour turned would be."""
    by_hour: dict[datetime, list[tuple[datetime, str]]] = defaultdict(list)
    for record in records:
        when = _when(record)
        delivered = when + timedelta(seconds=late_seconds)
        hour = delivered.replace(minute=0, second=0, microsecond=0)
        by_hour[hour].append((when, json.dumps(record, separators=(",", ":"))))
    objects: dict[str, list[str]] = {}
    for hour, lines in sorted(by_hour.items()):
        lines.sort(key=lambda item: item[0])
        parts = max(1, min(objects_per_hour, len(lines)))
        for n in range(parts):
            chunk = [line for _, line in lines[n * len(lines) // parts : (n + 1) * len(lines) // parts]]
            # named by content too, as Bedrock names each object uniquely: two deliveries to the same hour folder
            # (a late record of the day before, another writer) never overwrite each other
            digest = hashlib.sha1("\n".join(chunk).encode(), usedforsecurity=False).hexdigest()[:12]
            objects[f"{hour:%Y/%m/%d/%H}/{hour:%Y%m%dT%H}{n:02d}00Z_{digest}.json.gz"] = chunk
    return objects


def put_delivered(
    s3: Any,
    location: str,
    account: str,
    region: str,
    records: Iterable[dict[str, Any]],
    *,
    objects_per_hour: int = 2,
    late_seconds: int = 0,
) -> list[str]:
    """Write the records to `location` (s3://bucket[/prefix], the logging configuration's) as Bedrock would; the
    keys written. The bucket must exist."""
    bucket, prefix = logs_prefix(location, account, region)
    keys = []
    for name, lines in delivered_objects(records, objects_per_hour=objects_per_hour, late_seconds=late_seconds).items():
        body = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0)
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=body)
        keys.append(f"{prefix}/{name}")
    marker = prefix.rsplit("/", 1)[0] + "/" + MARKER
    s3.put_object(Bucket=bucket, Key=marker, Body=b"")
    return keys
