"""The report bucket: the only code that knows its keys and S3's error codes."""

from lambda_function.store.objects import Bucket, S3Client, StoredObject, read_location
from lambda_function.store.reports import (
    ConditionalObject,
    PriceStore,
    RefreshedTable,
    ReportStore,
    StoredReport,
    report_key,
)

__all__ = [
    "Bucket",
    "ConditionalObject",
    "PriceStore",
    "RefreshedTable",
    "ReportStore",
    "S3Client",
    "StoredObject",
    "StoredReport",
    "read_location",
    "report_key",
]
