"""The report store and its checks: where the CSV, its summary and the email marker live in S3, whether the bucket,
the log groups and the price overrides are there before anything is paid for, and how long a link can live.
Clients are passed in."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

from lambda_function.aws import error_code
from lambda_function.config import LogGroup
from lambda_function.errors import ConfigError
from lambda_function.window import ReportWindow, day_window

log = logging.getLogger(__name__)

SES_MAX_RAW_MESSAGE = 40 * 1024 * 1024  # SES v2 SendEmail with raw content: 40 MB after encoding


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def report_key(prefix: str, window: ReportWindow, *, partial: bool = False) -> str:
    """Deterministic per window, so a re-run overwrites the same object instead of piling up copies. A partial
    window (month to date) is named apart: it never shares a key, or an email marker, with a finished one."""
    day = window.local_start.date()
    kind = "bedrock-usage-partial" if partial else "bedrock-usage"
    name = f"{kind}_{_stamp(window.start)}_{_stamp(window.end)}.csv"
    return f"{prefix}/reports/{day:%Y}/{day:%m}/{day:%d}/{name}"


def put_report(s3: Any, bucket: str, key: str, body: bytes, metadata: dict[str, str]) -> str:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="text/csv; charset=utf-8",
        Metadata=metadata,
    )
    return f"s3://{bucket}/{key}"


def sent_marker_key(csv_key: str) -> str:
    """Where the 'this window's email went out' marker lives, beside the CSV."""
    return csv_key.removesuffix(".csv") + ".email-sent.json"


def put_summary(s3: Any, bucket: str, csv_key: str, summary: dict[str, Any]) -> str:
    """The machine-readable summary beside the CSV (same name, .json), on one line: Athena's JSON SerDe (the stack's
    `summaries` table) reads one object per line."""
    key = summary_key(csv_key)
    body = (json.dumps(summary, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return f"s3://{bucket}/{key}"


def presigned_link(s3: Any, bucket: str, key: str, expires_seconds: int) -> str:
    return str(
        s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_seconds)
    )


def read_overrides(location: str, s3: Any) -> bytes | None:
    """The negotiated-price rows (PRICE_OVERRIDES), from a local file or S3, read on every run: they may change."""
    if not location:
        return None
    if not location.startswith("s3://"):
        try:
            return Path(location).read_bytes()
        except OSError as err:
            raise ConfigError("PRICE_OVERRIDES", f"{location!r} cannot be read: {err.strerror}") from None
    bucket, key = location.removeprefix("s3://").split("/", 1)
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as err:
        code = error_code(err)
        if code in ("NoSuchKey", "NoSuchBucket", "AccessDenied", "404", "403"):
            raise ConfigError("PRICE_OVERRIDES", f"{location!r} cannot be read ({code})") from None
        raise


def check_bucket(s3: Any, bucket: str, prefix: str) -> None:
    """REPORT_BUCKET exists and the function may list its report prefix (the role's s3:ListBucket is scoped to
    it), checked before the queries are paid for."""
    try:
        s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/", MaxKeys=1)
    except ClientError as err:
        code = error_code(err)
        if code in ("NoSuchBucket", "AccessDenied", "AllAccessDisabled", "404", "403"):
            raise ConfigError("REPORT_BUCKET", f"{bucket!r} cannot be used ({code})") from None
        raise


def check_log_groups(groups: Sequence[LogGroup], logs_for: Callable[[str], Any], default_region: str) -> None:
    """Each log group named by LOG_GROUP_NAMES exists (DescribeLogGroups), checked before the queries are paid for.
    Log-group ARNs of other accounts cannot be described from here; StartQuery checks those."""
    for group in groups:
        region = group.region or default_region
        try:
            found = logs_for(region).describe_log_groups(logGroupNamePrefix=group.name, limit=1).get("logGroups", [])
        except ClientError as err:
            if error_code(err) in ("AccessDeniedException", "AccessDenied"):
                log.warning("cannot check that the log groups exist (%s); StartQuery will", error_code(err))
                return
            raise
        # Names sort ASCII-wise, so the exact name, when it exists, is the first with it as a prefix.
        if found and found[0].get("logGroupName") == group.name:
            continue
        if group.is_arn:
            log.info("log group %s is not in this account's %s; StartQuery checks it", group.identifier, region)
            continue
        raise ConfigError("LOG_GROUP_NAMES", f"{group.identifier!r} does not exist in {region}")


@dataclass(frozen=True)
class LinkLifetime:
    """How long the presigned link works: the setting, capped by the signing credentials' own expiry."""

    seconds: int
    temporary_unknown_expiry: bool = False  # signed with temporary credentials whose expiry we cannot see

    def describe(self) -> str:
        hours = self.seconds // 3600
        span = f"{hours} hours" if hours >= 2 else "1 hour" if hours == 1 else f"{max(1, self.seconds // 60)} minutes"
        if self.temporary_unknown_expiry:
            return f"valid up to {span}, or until the temporary credentials that signed it expire, if sooner"
        return f"valid {span}"


def link_lifetime(credentials: Any, requested_seconds: int, now: datetime) -> LinkLifetime:
    """A presigned URL stops working when the credentials that signed it expire, whatever X-Amz-Expires says."""
    if credentials is None:
        return LinkLifetime(requested_seconds)
    # botocore keeps the expiry of refreshable credentials (assumed roles, SSO, AWS_CREDENTIAL_EXPIRATION) here.
    expiry = getattr(credentials, "_expiry_time", None)
    if isinstance(expiry, datetime):
        left = int((expiry - now.astimezone(UTC)).total_seconds())
        return LinkLifetime(max(60, min(requested_seconds, left)))
    frozen = credentials.get_frozen_credentials() if hasattr(credentials, "get_frozen_credentials") else credentials
    # Lambda passes its role's session credentials in environment variables, without their expiry.
    return LinkLifetime(requested_seconds, temporary_unknown_expiry=bool(getattr(frozen, "token", None)))


@dataclass(frozen=True)
class RefreshedTable:
    """A token price table the weekly refresh wrote: its S3 key and content."""

    key: str
    content: bytes

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


class PriceStore:
    """Where the refreshed price tables live in the report bucket: `<prefix>/prices/token_prices.<day>.<sha>.csv`,
    `<sha>` the start of the hash of the bundled table it was built from, and the operator's extra Price List name
    mappings, `<prefix>/prices/price_list_names.csv` (optional)."""

    _TABLE = re.compile(r"token_prices\.(\d{4}-\d{2}-\d{2})\.([0-9a-f]{12})\.csv$")

    def __init__(self, s3: Any, bucket: str, prefix: str):
        self.s3, self.bucket, self.prefix = s3, bucket, f"{prefix}/prices/"

    def table_key(self, day: str, bundled_sha: str) -> str:
        return f"{self.prefix}token_prices.{day}.{bundled_sha[:12]}.csv"

    def newest(self, bundled_sha: str) -> RefreshedTable | None:
        """The newest refreshed table built from this bundled table, or None (a new deploy ships a new bundled
        table: tables built from an older one are not used until the next refresh)."""
        keys = []
        params = {"Bucket": self.bucket, "Prefix": f"{self.prefix}token_prices."}
        while True:
            page = self.s3.list_objects_v2(**params)
            keys += [o["Key"] for o in page.get("Contents", []) if self._TABLE.search(o["Key"])]
            if not page.get("IsTruncated"):
                break
            params["ContinuationToken"] = page["NextContinuationToken"]
        # The key says which bundled table each was built from: tables of older packages are never downloaded.
        ours = [key for key in keys if (m := self._TABLE.search(key)) and m.group(2) == bundled_sha[:12]]
        if not ours:
            return None
        newest = max(ours)  # the day sorts as text
        return RefreshedTable(newest, bytes(self.s3.get_object(Bucket=self.bucket, Key=newest)["Body"].read()))

    def read(self, key: str) -> bytes | None:
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as err:
            if error_code(err) in ("NoSuchKey", "404", "AccessDenied"):
                return None
            raise

    def put(self, day: str, content: bytes, bundled_sha: str) -> str:
        key = self.table_key(day, bundled_sha)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=content, ContentType="text/csv; charset=utf-8")
        return f"s3://{self.bucket}/{key}"

    def extra_names(self) -> bytes | None:
        return self.read(f"{self.prefix}price_list_names.csv")


def summary_key(csv_key: str) -> str:
    return csv_key.removesuffix(".csv") + ".json"


def day_summary_key(prefix: str, day: date, tz: ZoneInfo) -> str:
    """The JSON summary of the daily report of `day` (a local day in `tz`), as the daily run writes it."""
    return summary_key(report_key(prefix, day_window(day, tz)))


def spike_alert_key(prefix: str, day_label: str, spike_id: str) -> str:
    """The marker saying a spike was alerted for a day: created once, beside the budget alerts."""
    return f"{prefix}/budget-alerts/{day_label}/spike-{spike_id}.json"


def budget_alert_key(prefix: str, budget_id: str, period_label: str, threshold: int) -> str:
    """The marker saying a budget's threshold was alerted for a period (`2026-11-20` or `2026-11`): created once,
    with If-None-Match, never changed. Outside reports/, which the stack's Athena table reads."""
    return f"{prefix}/budget-alerts/{period_label}/{budget_id}-{threshold}.json"


def read_summary(s3: Any, bucket: str, csv_key: str) -> dict[str, Any] | None:
    """The JSON summary beside a CSV, or None when there is none (or it cannot be read)."""
    try:
        document = json.loads(s3.get_object(Bucket=bucket, Key=summary_key(csv_key))["Body"].read())
    except ClientError as err:
        if error_code(err) in ("NoSuchKey", "404", "AccessDenied"):
            return None
        raise
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
