"""The report store: the one owner of the report bucket's layout. It writes today's CSV and summary, reads earlier
summaries (each once per run, validated at the edge), holds the refreshed price tables and the once-only claims.

    <prefix>/reports/YYYY/MM/DD/bedrock-usage_<start>_<end>.csv          the report (same key on a re-run)
    <prefix>/reports/YYYY/MM/DD/bedrock-usage_<start>_<end>.json         its summary (one JSON line)
    <prefix>/reports/YYYY/MM/DD/bedrock-usage_<start>_<end>.email-sent.json   the email's once-only marker
    <prefix>/reports/YYYY/MM/DD/bedrock-usage-partial_<start>_<end>.csv  a window not yet over (month to date)
    <prefix>/reports/YYYY/MM/DD/bedrock-billed_<start>_<end>.csv         a settled day's bill per identity (CUR)
    <prefix>/budget-alerts/<period>/<budget>-<threshold>.json            a budget alert, claimed once
    <prefix>/budget-alerts/<day>/spike-<id>.json                         a spike alert, claimed once
    <prefix>/prices/token_prices.<day>.<sha12>.csv                       a refreshed price table
    <prefix>/prices/price_list_names.csv                                 the operator's Price List names
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.columns import CSV_COLUMNS
from lambda_function.store.objects import CSV, JSON, Bucket, S3Client, StoredObject
from lambda_function.summary import Summary, SummaryError
from lambda_function.window import ReportWindow, day_window

log = logging.getLogger(__name__)

# the report CSV's text columns read back (report/rows.neutralise put a "'" before what a spreadsheet runs as a formula)
_ROW_TEXT = {
    "account_id": "Account Id",
    "identity_arn": "Identity ARN",
    "model_id": "Model Id",
    "region": "Region Name",
}
_FORMULA_START = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


class ReportCsvError(ValueError):
    """A stored report CSV that is not what the report writes (header, a count or a charge malformed)."""


def _text(value: str) -> str:
    """A text cell as the report had it before neutralising it for spreadsheets."""
    rest = value[1:]
    if value.startswith("'") and (rest.startswith(_FORMULA_START) or rest[:1].isspace()):
        return rest
    return value


def parse_report_csv(body: bytes) -> list[dict[str, Any]]:
    """A report CSV's rows (untrusted: read back from the bucket), each `account_id`, `identity_arn`, `model_id` (as
    logged), `region`, `invocations` (int) and `charge` (Decimal, None when unpriced: never $0). The header must
    open with the CSV contract's columns, in order (attribution columns may follow)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ReportCsvError(f"not UTF-8: {err}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or header[: len(CSV_COLUMNS)] != CSV_COLUMNS:
        raise ReportCsvError("the header is not the report CSV's")
    at = {name: header.index(name) for name in CSV_COLUMNS}
    rows = []
    for number, cells in enumerate(reader, start=2):
        if len(cells) != len(header):
            raise ReportCsvError(f"line {number} has {len(cells)} cells, the header {len(header)}")
        raw_invocations, raw_charge = cells[at["Invocations"]], cells[at["Charges incurred"]]
        if not raw_invocations.isascii() or not raw_invocations.isdigit():
            raise ReportCsvError(f"line {number}: the invocations {raw_invocations!r} are not a count")
        charge: Decimal | None = None
        if raw_charge != "":
            try:
                charge = Decimal(raw_charge)
            except InvalidOperation:
                raise ReportCsvError(f"line {number}: the charge {raw_charge!r} is not a number") from None
            if not charge.is_finite() or charge < 0:
                raise ReportCsvError(f"line {number}: the charge {raw_charge!r} is not an amount")
        row: dict[str, Any] = {key: _text(cells[at[name]]) for key, name in _ROW_TEXT.items()}
        row.update(invocations=int(raw_invocations), charge=charge)
        rows.append(row)
    return rows


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def report_key(prefix: str, window: ReportWindow, *, partial: bool = False) -> str:
    """Deterministic per window, so a re-run overwrites the same object instead of piling up copies. A partial
    window (month to date) is named apart: it never shares a key, or an email marker, with a finished one."""
    day = window.local_start.date()
    kind = "bedrock-usage-partial" if partial else "bedrock-usage"
    name = f"{kind}_{_stamp(window.start)}_{_stamp(window.end)}.csv"
    return f"{prefix}/reports/{day:%Y}/{day:%m}/{day:%d}/{name}"


def settled_key(prefix: str, window: ReportWindow) -> str:
    """The settled day's bill per identity (CUR 2.0), beside that day's report."""
    day = window.local_start.date()
    name = f"bedrock-billed_{_stamp(window.start)}_{_stamp(window.end)}.csv"
    return f"{prefix}/reports/{day:%Y}/{day:%m}/{day:%d}/{name}"


def summary_key(csv_key: str) -> str:
    return csv_key.removesuffix(".csv") + ".json"


def email_marker_key(csv_key: str) -> str:
    """Where the 'this window's email went out' marker lives, beside the CSV."""
    return csv_key.removesuffix(".csv") + ".email-sent.json"


@dataclass(frozen=True)
class StoredReport:
    """Where a report's CSV went: its key (the summary and the email marker live beside it) and URI."""

    key: str
    uri: str

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


class ReportStore:
    """The report bucket under REPORT_PREFIX, for one run (earlier summaries are cached for the run's length)."""

    def __init__(self, s3: S3Client, bucket: str, prefix: str, tz: ZoneInfo):
        self.bucket = Bucket(s3, bucket)
        self.prefix = prefix
        self.tz = tz
        self.prices = PriceStore(s3, bucket, prefix)
        self.skipped: list[str] = []  # keys of earlier summaries that could not be read (the footer counts them)
        self._summaries: dict[str, Summary | None] = {}
        self._rows: dict[str, list[dict[str, Any]] | None] = {}

    def check(self) -> None:
        """REPORT_BUCKET exists and the report prefix may be listed: checked before the queries are paid for."""
        self.bucket.check(f"{self.prefix}/", "REPORT_BUCKET")

    # ---- today's report ----------------------------------------------------------------------------------------------

    def put_report(self, window: ReportWindow, csv: bytes, *, partial: bool = False) -> StoredReport:
        key = report_key(self.prefix, window, partial=partial)
        bounds = window.as_json()
        uri = self.bucket.put(key, csv, CSV, {"window-start": bounds["start"], "window-end": bounds["end"]})
        return StoredReport(key, uri)

    def put_settled(self, window: ReportWindow, csv: bytes) -> StoredReport:
        """The settled CSV of `window`'s day (the bill per identity), beside its report; same key on a re-run."""
        key = settled_key(self.prefix, window)
        bounds = window.as_json()
        uri = self.bucket.put(key, csv, CSV, {"window-start": bounds["start"], "window-end": bounds["end"]})
        return StoredReport(key, uri)

    def link(self, report: StoredReport, seconds: int) -> str:
        return self.bucket.presigned_link(report.key, seconds)

    def put_summary(self, window: ReportWindow, summary: Summary, *, partial: bool = False) -> str:
        """The summary beside the window's CSV: today's, or an earlier one written back with what a later run
        learned (the bill's verdict)."""
        key = summary_key(report_key(self.prefix, window, partial=partial))
        uri = self.bucket.put(key, summary.to_json(), JSON)
        self._summaries[key] = summary
        return uri

    # ---- earlier summaries ----------------------------------------------------------------------------------------

    def summary(self, window: ReportWindow) -> Summary | None:
        """The summary of the report of `window`, or None when there is none. One that cannot be read (not JSON, a
        field malformed, an S3 error) is None too, with a warning and its key in `skipped`: an earlier report's
        fault never stops today's. Each key is read at most once per run."""
        key = summary_key(report_key(self.prefix, window))
        if key not in self._summaries:
            self._summaries[key] = self._read_summary(key, window)
        return self._summaries[key]

    def skipped_summary(self, window: ReportWindow) -> bool:
        """Whether the summary of `window` is there but could not be read (see `summary`)."""
        return summary_key(report_key(self.prefix, window)) in self.skipped

    def day_summary(self, day: date) -> Summary | None:
        """The summary of the daily report of `day` (a local day in the report's time zone)."""
        return self.summary(day_window(day, self.tz))

    def summaries(self, days: Iterable[date]) -> dict[date, Summary]:
        """The daily summaries of `days` that exist and can be read."""
        found = {day: self.day_summary(day) for day in days}
        return {day: summary for day, summary in found.items() if summary is not None}

    def _read_summary(self, key: str, window: ReportWindow) -> Summary | None:
        try:
            stored = self.bucket.get(key)
        except ClientError as err:
            log.warning("skipping the earlier summary %s: %s", self.bucket.uri(key), err)
            self.skipped.append(key)
            return None
        if stored is None:
            return None
        try:
            summary = Summary.from_json(stored.body)
        except SummaryError as err:
            log.warning("skipping the unreadable earlier summary %s: %s", self.bucket.uri(key), err)
            self.skipped.append(key)
            return None
        if summary.window_start != window.as_json()["start"]:
            return None  # another window's summary (the time zone changed since): not this one's
        return summary

    # ---- an earlier report's rows --------------------------------------------------------------------------------

    def report_rows(self, window: ReportWindow) -> list[dict[str, Any]] | None:
        """The rows of the report CSV of `window` (see `parse_report_csv`), or None when there is none. One that
        cannot be read (an S3 error, not the report's header, a count or a charge malformed) is None too, with a
        warning and its key in `skipped`, like an unreadable summary. Read at most once per run."""
        key = report_key(self.prefix, window)
        if key not in self._rows:
            self._rows[key] = self._read_rows(key)
        return self._rows[key]

    def skipped_report(self, window: ReportWindow) -> bool:
        """Whether the report CSV of `window` is there but could not be read (see `report_rows`)."""
        return report_key(self.prefix, window) in self.skipped

    def _read_rows(self, key: str) -> list[dict[str, Any]] | None:
        try:
            stored = self.bucket.get(key)
            return parse_report_csv(stored.body) if stored is not None else None
        except (ClientError, BotoCoreError, ReportCsvError) as err:
            log.warning("skipping the unreadable earlier report %s: %s", self.bucket.uri(key), err)
            self.skipped.append(key)
            return None

    # ---- once-only claims ---------------------------------------------------------------------------------------

    def claim(self, key: str, document: dict[str, Any], *, run_id: str, now: datetime) -> bool:
        """Create the marker `key` unless it exists: True when this run holds it. Ours all the same when our own
        earlier attempt landed and only its answer was lost (the client retries a PutObject after a timeout or a
        5xx): the marker then names this run. A marker an earlier run released (its send provably failed) is taken
        over, only if unchanged since read."""
        body = (json.dumps({**document, "run_id": run_id, "claimed_at": now.isoformat()}, indent=2) + "\n").encode()
        if self.bucket.create(key, body) is not None:
            return True
        existing = self._marker(key)
        if existing is None:
            return False
        found, etag = existing
        if found.get("run_id") == run_id:
            return True
        return found.get("released") is True and self.bucket.replace(key, body, etag) is not None

    def release(self, key: str, *, run_id: str, why: str, now: datetime) -> bool:
        """Give back this run's claim `key` (the service proved it did not act: nothing was sent), so that the next
        run claims and sends it. Only if the marker still names this run and is unchanged since read."""
        existing = self._marker(key)
        if existing is None or existing[0].get("run_id") != run_id:
            return False
        released = {**existing[0], "released": True, "released_at": now.isoformat(), "why": why}
        return self.bucket.replace(key, (json.dumps(released, indent=2) + "\n").encode(), existing[1]) is not None

    def _marker(self, key: str) -> tuple[dict[str, Any], str] | None:
        """An alert marker's JSON and ETag; None when it is gone or cannot be read (then it is nobody's to take)."""
        try:
            stored = self.bucket.get(key)
            document = json.loads(stored.body) if stored else None
        except (ClientError, ValueError) as err:
            log.warning("cannot read the alert marker %s: %s", self.bucket.uri(key), err)
            return None
        return (document, stored.etag) if stored and isinstance(document, dict) else None

    def budget_alert_key(self, budget_id: str, period_label: str, threshold: int) -> str:
        """A budget's threshold alerted for a period (`2026-11-20` or `2026-11`): created once, never changed.
        Outside reports/, which the stack's Athena table reads."""
        return f"{self.prefix}/budget-alerts/{period_label}/{budget_id}-{threshold}.json"

    def spike_alert_key(self, day_label: str, spike_id: str) -> str:
        """A spike alerted for a day: created once, beside the budget alerts."""
        return f"{self.prefix}/budget-alerts/{day_label}/spike-{spike_id}.json"

    def email_marker(self, report: StoredReport) -> ConditionalObject:
        return ConditionalObject(self.bucket, email_marker_key(report.key))


@dataclass(frozen=True)
class ConditionalObject:
    """One object changed only under conditions: created if absent, replaced if unchanged since read."""

    bucket: Bucket
    key: str

    @property
    def uri(self) -> str:
        return self.bucket.uri(self.key)

    def read(self) -> StoredObject | None:
        return self.bucket.get(self.key)

    def create(self, body: bytes) -> str | None:
        return self.bucket.create(self.key, body)

    def replace(self, body: bytes, etag: str) -> str | None:
        return self.bucket.replace(self.key, body, etag)

    def overwrite(self, body: bytes) -> str:
        """Unconditionally (only `force` does this, over a marker that cannot even be read); the new ETag."""
        return self.bucket.overwrite(self.key, body)


@dataclass(frozen=True)
class RefreshedTable:
    """A token price table the weekly refresh wrote: its S3 key and content."""

    key: str
    content: bytes

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


class PriceStore:
    """The refreshed price tables: `<prefix>/prices/token_prices.<day>.<sha>.csv`, `<sha>` the start of the hash of
    the bundled table it was built from, and the operator's extra Price List name mappings,
    `<prefix>/prices/price_list_names.csv` (optional)."""

    _TABLE = re.compile(r"token_prices\.(\d{4}-\d{2}-\d{2})\.([0-9a-f]{12})\.csv$")

    def __init__(self, s3: S3Client, bucket: str, prefix: str):
        self.bucket, self.prefix = Bucket(s3, bucket), f"{prefix}/prices/"

    def uri(self, key: str) -> str:
        return self.bucket.uri(key)

    def table_key(self, day: str, bundled_sha: str) -> str:
        return f"{self.prefix}token_prices.{day}.{bundled_sha[:12]}.csv"

    def refreshed(self, bundled_sha: str) -> list[tuple[date, str]]:
        """The refreshed tables built from this bundled table, newest first: (the day in the key, the key). Tables
        built from an older bundled table are not listed (a new deploy ships a new one; they are not used until the
        next refresh), and none is downloaded here."""
        found = []
        for key in self.bucket.keys(f"{self.prefix}token_prices."):
            match = self._TABLE.search(key)
            if match and match.group(2) == bundled_sha[:12]:
                try:
                    found.append((date.fromisoformat(match.group(1)), key))
                except ValueError:
                    continue  # 2026-13-45: no refresh wrote that
        return sorted(found, reverse=True)

    def read(self, key: str) -> bytes | None:
        stored = self.bucket.get(key)
        return stored.body if stored else None

    def put(self, day: str, content: bytes, bundled_sha: str) -> str:
        return self.bucket.put(self.table_key(day, bundled_sha), content, CSV)

    def extra_names(self) -> bytes | None:
        return self.read(f"{self.prefix}price_list_names.csv")
