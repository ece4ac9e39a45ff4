"""The invocation logs delivered to S3, aggregated by ONE SQL text (Athena's dialect; the embedded engine translates
what differs in `engine/dialect.py`): the same groups and sums as the Logs Insights query (`query.py`), under the
same result names, so that the rows become the usage frame through the same `usage.usage_frame`. Pure: text in,
text out.

The relation `logs` has one row per line of each object (`line`), the object (`"$path"`) and the hour folder it
is in (`log_hour`, `2026/11/20/07`: the delivery layout's `YYYY/MM/DD/HH`). Every value is read as the Insights
query reads it: from the parsed JSON where the line is JSON (no 200-field limit here), else by the same regular
expression on the raw text, with the same defaults; a record is a line that names its schemaType
ModelInvocationLog (so that a record cut short still counts, as unreadable, exactly as in Logs Insights).

Counts are summed exactly (DECIMAL(38, 0)) over values that are plain whole numbers of at most 18 digits; a group
with any other value (negative, fractional, `1e30`, `true`) answers that value instead of a sum, and the usage
frame refuses it by name (`usage._count`), never a partial sum.

One scan answers two things (GROUPING SETS): the usage groups of the window's records, and per hour folder what
was read (`usage_row` = 0): objects, lines, lines that are not JSON, records in the window, records outside it
(the hour after the window is read too: a record can be delivered in the folder of the hour after its own),
records whose timestamp cannot be read, JSON lines that are not records, and records that are not JSON (cut
short: counted as records, and as unreadable ones, exactly as Logs Insights counts them). The source proves from those that every line was accounted for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from lambda_function.sources.query import meta_field

LINES = "logs"  # the relation's name in the SQL
HOUR_FORMAT = "%Y/%m/%d/%H"  # the hour folders (and the Glue table's projected log_hour)
LATE_HOURS = 1  # folders read after the window's last hour, for records delivered late
# A count that is summed: a plain whole number (more digits, and the usage frame is told the value instead).
_WHOLE = "^[0-9]{1,18}$"
_NUMBER = "-?[0-9][0-9.eE+-]*"
_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$"

# (name, JSON path or "", regular expression on the raw line or "", default or None): the Insights query's values.
_FIELDS: tuple[tuple[str, str, str, str | None], ...] = (
    ("in_raw", "$.input.inputTokenCount", rf'"inputTokenCount"\s*:\s*({_NUMBER})', None),
    ("out_raw", "$.output.outputTokenCount", rf'"outputTokenCount"\s*:\s*({_NUMBER})', None),
    ("cr_raw", "$.input.cacheReadInputTokenCount", rf'"cacheReadInputTokenCount"\s*:\s*({_NUMBER})', None),
    ("cw_raw", "$.input.cacheWriteInputTokenCount", rf'"cacheWriteInputTokenCount"\s*:\s*({_NUMBER})', None),
    ("a", "$.accountId", r'"accountId"\s*:\s*"([^"]+)"', None),
    ("i", "$.identity.arn", r'"identity"\s*:\s*\{\s*"arn"\s*:\s*"([^"]+)"', ""),
    ("m", "$.modelId", r'"modelId"\s*:\s*"([^"]+)"', None),
    ("r", "$.region", r'"region"\s*:\s*"([^"]+)"', None),
    ("error", "$.errorCode", r'"errorCode"\s*:\s*"([^"]+)"', None),
    ("svc_tier", "", r'"serviceTier"\s*:\s*\{\s*"type"\s*:\s*"(priority|default|flex|reserved)"', ""),
    ("perf", "$.performanceConfig.latency", r'"latency"\s*:\s*"(optimized|standard)"', ""),
    ("ts", "$.timestamp", r'"timestamp"\s*:\s*"([^"]+)"', None),
)
_IMAGES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("img_w", ("$.input.inputBodyJson.imageGenerationConfig.width", "$.input.inputBodyJson.width"), ""),
    ("img_h", ("$.input.inputBodyJson.imageGenerationConfig.height", "$.input.inputBodyJson.height"), ""),
    ("img_q", ("$.input.inputBodyJson.imageGenerationConfig.quality",), ""),
    ("img_steps", ("$.input.inputBodyJson.steps",), ""),
    (
        "img_n",
        ("$.input.inputBodyJson.imageGenerationConfig.numberOfImages", "$.input.inputBodyJson.samples"),
        "",
    ),
)
# 1-hour cache writes, in the two shapes of the response body (query.py says why); their TTL is unknown when the
# body has neither key.
_CACHE_1H = (
    rf'"ttl"\s*:\s*"1h"\s*,\s*"inputTokens"\s*:\s*({_NUMBER})',
    rf'"inputTokens"\s*:\s*({_NUMBER})\s*,\s*"ttl"\s*:\s*"1h"',
    rf'"ephemeral_1h_input_tokens"\s*:\s*({_NUMBER})',
)
_TTL_SPLIT = r'"(cacheDetails|cache_creation)"'
_RECORD = r'"schemaType"\s*:\s*"ModelInvocationLog"'
_COUNTS = (
    ("n", "in_raw"),
    ("u", "out_raw"),
    ("cr", "cr_raw"),
    ("cw", "cw_raw"),
    ("ch", "cw1h_raw"),
    ("cu", "cw_unknown_raw"),
)
# The hour rows' columns (per_hour = 1), beside the usage rows' (query.RESULT_FIELDS' names).
HOUR_COLUMNS = (
    "log_hour", "objects", "lines", "not_json", "in_window", "outside", "bad_time", "other_json", "cut_short",
)  # fmt: skip


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _value(path: str, pattern: str) -> str:
    parts = [f"json_extract_scalar(doc, {_text(path)})"] if path else []
    parts += [f"regexp_extract(line, {_text(pattern)}, 1)"] if pattern else []
    return parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"


def _meta_value(key: str) -> str:
    pattern = re.sub(r"([.+])", r"\\\1", key)
    regex = rf'"requestMetadata"\s*:\s*\{{[^}}]*"{pattern}"\s*:\s*"([^"]*)"'
    path = '$.requestMetadata["' + key + '"]'  # keys are [A-Za-z0-9_.:/=+@-] (config.py): no quote to escape
    return f"COALESCE({_value(path, regex)}, '')"


def _sum(name: str, raw: str) -> str:
    """The exact sum of a count, or (when any value is not a plain whole number) one such value, as text. Both
    branches are computed for every group (aggregates are), hence TRY_CAST: a group with a value it cannot cast
    answers that value, never the sum."""
    bad = f"NOT regexp_like({raw}, {_text(_WHOLE)})"
    return (
        f"CASE WHEN count_if({bad}) > 0 THEN max(CASE WHEN {bad} THEN {raw} END)\n"
        f"         ELSE CAST(SUM(TRY_CAST({raw} AS DECIMAL(38, 0))) AS VARCHAR) END AS {name}"
    )


def log_hours(start: datetime, end: datetime, late: int = LATE_HOURS) -> tuple[list[str], list[str]]:
    """The hour folders a window [start, end) reads: its own (UTC hours it overlaps, whatever the report's time
    zone: 23, 24 or 25 for a local day when clocks change, 25 for a day at a half-hour offset) and `late` after."""
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    own = []
    hour = first
    while hour < end:
        own.append(hour.strftime(HOUR_FORMAT))
        hour += timedelta(hours=1)
    after = [(hour + timedelta(hours=n)).strftime(HOUR_FORMAT) for n in range(late)]
    return own, after


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def logs_query(
    start: datetime,
    end: datetime,
    thresholds: Sequence[int] = (),
    attribution_keys: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> str:
    """The window's usage groups and its hour folders' accounts, in one scan. `exclude`: objects (s3 URIs) left
    out (unreadable ones, named in the report)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise TypeError("the window's bounds must be aware datetimes")
    ordered = sorted(set(thresholds))
    if any(t <= 0 for t in ordered):
        raise ValueError(f"thresholds must be positive: {ordered}")
    own, after = log_hours(start, end)
    hours = ", ".join(_text(h) for h in own + after)
    left_out = "".join(f'\n    AND "$path" <> {_text(uri)}' for uri in exclude)
    fields = ",\n    ".join(
        f"COALESCE({_value(path, pattern)}, {_text(default)}) AS {name}"
        if default is not None
        else f"{_value(path, pattern)} AS {name}"
        for name, path, pattern, default in _FIELDS
    )
    images = ",\n    ".join(
        f"COALESCE({', '.join(f'json_extract_scalar(doc, {_text(p)})' for p in paths)}, {_text(default)}) AS {name}"
        for name, paths, default in _IMAGES
    )
    cache_1h = "COALESCE(" + ", ".join(f"regexp_extract(line, {_text(p)}, 1)" for p in _CACHE_1H) + ")"
    metas = "".join(f",\n    {_meta_value(key)} AS {meta_field(n)}" for n, key in enumerate(attribution_keys))
    whole = "COALESCE(TRY_CAST({} AS DECIMAL(38, 0)), 0)"
    all_in = " + ".join(whole.format(raw) for raw in ("in_raw", "cr_raw", "cw_raw"))
    band = " + ".join(f"CASE WHEN {all_in} > {t} THEN 1 ELSE 0 END" for t in ordered)
    band_text = f"CAST({band} AS VARCHAR)" if ordered else "''"  # as the Insights query folds it
    keys = ["d", "a", "i", "m", "r", "o", *(meta_field(n) for n in range(len(attribution_keys)))]
    sums = ",\n  ".join(_sum(name, raw) for name, raw in _COUNTS)
    return f"""\
WITH lines AS (
  SELECT log_hour, "$path" AS object, line, try(json_parse(line)) AS doc
  FROM {LINES}
  WHERE log_hour IN ({hours})
    AND "$path" NOT LIKE '%/data/%'
    AND line <> ''{left_out}
),
records AS (
  SELECT log_hour, object, line, doc, regexp_like(line, {_text(_RECORD)}) AS is_record,
    {fields},
    {images},
    {cache_1h} AS cw1h_raw,
    regexp_like(line, {_text(_TTL_SPLIT)}) AS ttl_split{metas}
  FROM lines
),
placed AS (
  SELECT *,
    CASE
      WHEN NOT is_record THEN 'other'
      WHEN ts IS NULL OR NOT regexp_like(ts, {_text(_TIMESTAMP)}) THEN 'bad_time'
      WHEN substr(ts, 1, 19) >= {_text(_stamp(start))} AND substr(ts, 1, 19) < {_text(_stamp(end))} THEN 'record'
      ELSE 'outside'
    END AS kind,
    substr(ts, 1, 10) || ' 00:00:00.000' AS d,
    img_w || '|' || img_h || '|' || img_steps || '|' || img_n || '|' || svc_tier || '|' || perf || '|'
      || {band_text} || '|' || img_q AS o,
    CASE WHEN ttl_split THEN '0' ELSE cw_raw END AS cw_unknown_raw,
    regexp_extract(line, {_text(_FIELDS[0][2])}, 1) IS NOT NULL OR error IS NOT NULL AS readable
  FROM records
)
SELECT
  grouping(log_hour) AS usage_row, kind,
  {", ".join(keys)},
  {sums},
  count(*) AS c, count(error) AS f, count_if(readable) AS k,
  log_hour, count(DISTINCT object) AS objects, count(*) AS lines, count_if(doc IS NULL) AS not_json,
  count_if(kind = 'record') AS in_window, count_if(kind = 'outside') AS outside,
  count_if(kind = 'bad_time') AS bad_time, count_if(kind = 'other' AND doc IS NOT NULL) AS other_json,
  count_if(kind <> 'other' AND doc IS NULL) AS cut_short
FROM placed
GROUP BY GROUPING SETS ((log_hour), (kind, {", ".join(keys)}))
ORDER BY usage_row, log_hour, i"""
