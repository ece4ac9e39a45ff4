"""Where usage comes from: a `UsageSource` checks its inputs before anything is paid for and collects a window's
usage frame (columns.COLUMNS) with the proof that it is complete.

- `collect`: the interface and the choice of source by LOG_SOURCE; `collected`: what a source hands over;
- `query`: the Logs Insights query text (aggregation on the server, parse fallbacks past 200 fields);
- `logs_sql` and `s3logs`: the same aggregation as one SQL text over the S3-delivered logs, on the engine seam
  (Athena, or the embedded engine), with its own proof of completeness and the gaps it names;
- `insights`: the Logs Insights runner (start, poll, page, split until provably complete) and the log-group check;
- `usage`: query rows typed into the usage frame, counts validated;
- `attribution`: ATTRIBUTION_KEYS values per row (request metadata, profile tags, IAM tags).
"""

from lambda_function.sources.attribution import attribute_usage
from lambda_function.sources.collect import CollectedUsage, UsageSource, usage_source
from lambda_function.sources.collected import SourceTotals
from lambda_function.sources.insights import QueryTotals

__all__ = ["CollectedUsage", "QueryTotals", "SourceTotals", "UsageSource", "attribute_usage", "usage_source"]
