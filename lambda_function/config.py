"""One configuration object, built once from the environment and validated with messages that name the variable."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lambda_function.errors import ConfigError

COST_METRICS = ("UnblendedCost", "BlendedCost", "AmortizedCost", "NetUnblendedCost", "NetAmortizedCost")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PRICE_TABLE = PACKAGE_ROOT / "pricing" / "token_prices.csv"

# All patterns are used with fullmatch: re.match with `$` also accepts a trailing newline.
# A log group name per the CloudWatch Logs API, or a log-group ARN (for cross-account / other-region groups).
_LOG_GROUP_NAME = re.compile(r"[\.\-_/#A-Za-z0-9]{1,512}")
_LOG_GROUP_ARN = re.compile(
    r"arn:aws[a-z-]*:logs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):log-group:(?P<name>[\.\-_/#A-Za-z0-9]{1,512})(:\*)?"
)
_BUCKET = re.compile(r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9!_.*'()/-]+")
_REGION = re.compile(r"[a-z]+(-[a-z0-9]+)+")  # us-east-1, us-gov-west-1, eusc-de-east-1
# Deliberately simple: one @, no spaces or commas, a dot in the domain. SES does the real verification.
_EMAIL = re.compile(r"[^@\s,;<>\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_DISPLAY_EMAIL = re.compile(r"(?P<name>[^<>]*)<(?P<addr>[^<>]+)>")
# An attribution key is looked up as a request-metadata key, an IAM tag and a Bedrock resource tag: ASCII only, as
# Bedrock's tag keys are (`[a-zA-Z0-9\s._:/=+@-]`), and no spaces, as the setting is a comma-separated list.
_ATTRIBUTION_KEY = re.compile(r"[A-Za-z0-9_.:/=+@-]{1,64}")
MAX_ATTRIBUTION_KEYS = 5  # each key is one more group-by field of the usage query: more rows per day


def is_email(value: str) -> bool:
    # isprintable: the pattern's local part would take a NUL or an ESC; a CR/LF would open a mail header
    return value.isprintable() and bool(_EMAIL.fullmatch(value))


def email_address(value: str) -> str:
    """The bare address of `alice@example.com` or `Reports <reports@example.com>`; '' when it is neither."""
    if not value.isprintable():  # a CR/LF in the display name would start a header of its own
        return ""
    value = value.strip()
    match = _DISPLAY_EMAIL.fullmatch(value)
    addr = match.group("addr").strip() if match else value
    return addr if is_email(addr) else ""


@dataclass(frozen=True)
class LogGroup:
    """A log group to query: its name, and the region/account when given as an ARN."""

    identifier: str  # what StartQuery receives: the name, or the ARN without a trailing ':*'
    name: str
    region: str | None = None
    account: str | None = None

    @property
    def is_arn(self) -> bool:
        return self.identifier.startswith("arn:")


def parse_log_group(value: str) -> LogGroup | None:
    match = _LOG_GROUP_ARN.fullmatch(value)
    if match:
        arn = value[:-2] if value.endswith(":*") else value
        return LogGroup(arn, match["name"], match["region"], match["account"])
    if _LOG_GROUP_NAME.fullmatch(value):
        return LogGroup(value, value)
    return None


@dataclass(frozen=True)
class Config:
    log_groups: tuple[LogGroup, ...]
    report_bucket: str
    report_prefix: str
    sender: str
    recipients: tuple[str, ...]
    timezone: ZoneInfo
    default_region: str
    price_table: Path = DEFAULT_PRICE_TABLE
    query_concurrency: int = 4
    query_row_limit: int = 100_000  # StartQuery's maximum; the runner falls back to 10,000 where refused
    price_discount_percent: Decimal = Decimal(0)
    price_overrides: str = ""
    link_expiry_seconds: int = 7 * 24 * 3600
    ses_region: str = ""  # where SES sends from, when not the function's region ("" = AWS_REGION)
    reconcile_lag_days: int = 2  # reconcile the day this many days before the report's (0: no reconciliation)
    reconcile_metric: str = "UnblendedCost"
    reconcile_alert_percent: Decimal = Decimal(
        5
    )  # a local path or s3://bucket/key of rows in token_prices.csv's columns
    attribution_keys: tuple[str, ...] = ()  # cost by team/project/...: request-metadata or tag keys
    budgets: str = ""  # a local path or s3://bucket/key of the budgets (CSV or JSON; see budgets.py)
    spike_factor: Decimal = Decimal(3)  # a day costing more than this times its 7-day median is a spike
    spike_min_usd: Decimal = Decimal("1.00")  # ... and more than this many dollars

    def require_email_settings(self, recipients: tuple[str, ...]) -> None:
        """Sending needs a sender and at least one recipient; checked only when a run sends."""
        if not self.sender:
            raise ConfigError("SENDER", "is not set; it is needed to send the report email")
        if not recipients:
            raise ConfigError("RECIPIENTS", "is not set and the event names no recipients")


def _split(value: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\s]+", value) if part.strip()]


def _setting(environ: Mapping[str, str], name: str, default: str = "") -> str:
    """The variable without surrounding spaces. A control character is refused rather than trimmed: these values
    end up in mail headers, S3 keys and URLs, and one there is a paste error at best, an injection at worst."""
    raw = environ.get(name, default)
    if not raw.isprintable():
        raise ConfigError(name, f"{raw!r} has a control character (or another non-printing one)")
    return raw.strip()


def _int_setting(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _setting(environ, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low} and {high}, got {value}")
    return value


def _object_location(environ: Mapping[str, str], name: str) -> str:
    """A setting naming a file to read: "" (none), a local path that exists, or s3://bucket/key."""
    location = _setting(environ, name)
    if location and not location.startswith("s3://") and not Path(location).is_file():
        raise ConfigError(name, f"{location!r} is neither a readable file nor an s3://bucket/key URI")
    if location.startswith("s3://") and "/" not in location.removeprefix("s3://").strip("/"):
        raise ConfigError(name, f"{location!r} names no object; use s3://bucket/key")
    return location


def _decimal_setting(environ: Mapping[str, str], name: str, default: str) -> Decimal | None:
    """The number, or None when it is not a finite one (Decimal reads NaN and Infinity)."""
    raw = _setting(environ, name) or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _attribution_keys(environ: Mapping[str, str]) -> tuple[str, ...]:
    keys = [part.strip() for part in _setting(environ, "ATTRIBUTION_KEYS").split(",") if part.strip()]
    for key in keys:
        if not _ATTRIBUTION_KEY.fullmatch(key):
            raise ConfigError(
                "ATTRIBUTION_KEYS", f"{key!r} is not a tag key: 1 to 64 letters, digits or _ . : / = + - @"
            )
    if len(keys) > MAX_ATTRIBUTION_KEYS:
        raise ConfigError("ATTRIBUTION_KEYS", f"names {len(keys)} keys; at most {MAX_ATTRIBUTION_KEYS} are allowed")
    # Compared without case: two CSV columns `team` and `Team` would be a typo, not two ways to split the cost.
    seen: dict[str, str] = {}
    for key in keys:
        if key.lower() in seen:
            raise ConfigError("ATTRIBUTION_KEYS", f"{key!r} repeats {seen[key.lower()]!r}")
        seen[key.lower()] = key
    return tuple(keys)


def load_config(environ: Mapping[str, str]) -> Config:
    """Build and validate the Config from environment variables; the first problem found is raised."""
    raw_groups = _split(_setting(environ, "LOG_GROUP_NAMES"))
    if not raw_groups:
        raise ConfigError("LOG_GROUP_NAMES", "is not set; give one or more log group names or ARNs, comma-separated")
    log_groups = []
    for raw in raw_groups:
        group = parse_log_group(raw)
        if group is None:
            raise ConfigError("LOG_GROUP_NAMES", f"{raw!r} is neither a log group name nor a log-group ARN")
        log_groups.append(group)

    bucket = _setting(environ, "REPORT_BUCKET")
    if not bucket:
        raise ConfigError("REPORT_BUCKET", "is not set; name the S3 bucket that receives the CSV reports")
    if not _BUCKET.fullmatch(bucket):
        raise ConfigError("REPORT_BUCKET", f"{bucket!r} is not a valid S3 bucket name")

    prefix = _setting(environ, "REPORT_PREFIX", "bedrock-usage").strip("/")
    if not prefix or ".." in prefix or not _PREFIX.fullmatch(prefix):
        raise ConfigError("REPORT_PREFIX", f"{prefix!r} is not a usable S3 key prefix")

    sender = _setting(environ, "SENDER")
    if sender and not email_address(sender):
        raise ConfigError("SENDER", f"{sender!r} is not an e-mail address")

    recipients = tuple(_split(_setting(environ, "RECIPIENTS")))
    for recipient in recipients:
        if not is_email(recipient):
            raise ConfigError("RECIPIENTS", f"{recipient!r} is not an e-mail address")

    tz_name = _setting(environ, "REPORT_TIMEZONE") or "UTC"
    try:
        timezone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("REPORT_TIMEZONE", f"{tz_name!r} is not an IANA time zone (e.g. Europe/Berlin)") from None

    region = _setting(environ, "AWS_REGION") or _setting(environ, "AWS_DEFAULT_REGION")
    if not region:
        raise ConfigError("AWS_REGION", "is not set; Lambda sets it, on the command line export AWS_REGION")
    if not _REGION.fullmatch(region):  # it becomes part of every endpoint's host name
        raise ConfigError("AWS_REGION", f"{region!r} is not an AWS region name like eu-west-1")

    price_table = Path(_setting(environ, "PRICE_TABLE") or DEFAULT_PRICE_TABLE)
    if not price_table.is_file():
        raise ConfigError("PRICE_TABLE", f"{str(price_table)!r} is not a readable file")

    raw_discount = _setting(environ, "PRICE_DISCOUNT_PERCENT") or "0"
    try:
        discount = Decimal(raw_discount)
    except InvalidOperation:
        raise ConfigError("PRICE_DISCOUNT_PERCENT", f"must be a number of percent, got {raw_discount!r}") from None
    if not discount.is_finite():  # Decimal reads NaN, sNaN and Infinity; comparing a NaN raises InvalidOperation
        raise ConfigError("PRICE_DISCOUNT_PERCENT", f"must be a number of percent, got {raw_discount!r}")
    if not Decimal(0) <= discount < Decimal(100):
        raise ConfigError("PRICE_DISCOUNT_PERCENT", f"must be from 0 up to (not including) 100, got {raw_discount}")

    overrides = _object_location(environ, "PRICE_OVERRIDES")

    ses_region = _setting(environ, "SES_REGION")
    if ses_region and not _REGION.fullmatch(ses_region):
        raise ConfigError("SES_REGION", f"{ses_region!r} is not a region name like eu-west-1")

    metric = _setting(environ, "RECONCILE_COST_METRIC") or "UnblendedCost"
    if metric not in COST_METRICS:
        raise ConfigError("RECONCILE_COST_METRIC", f"{metric!r} is not one of {', '.join(COST_METRICS)}")
    raw_alert = _setting(environ, "RECONCILE_ALERT_PERCENT") or "5"
    try:
        alert = Decimal(raw_alert)
    except InvalidOperation:
        alert = Decimal("NaN")
    if not alert.is_finite() or alert < 0:
        raise ConfigError("RECONCILE_ALERT_PERCENT", f"must be a number of percent, got {raw_alert!r}")

    budgets = _object_location(environ, "BUDGETS")

    spike_factor = _decimal_setting(environ, "SPIKE_FACTOR", "3")
    if spike_factor is None or spike_factor <= 1:
        raw = _setting(environ, "SPIKE_FACTOR")
        raise ConfigError("SPIKE_FACTOR", f"must be a number above 1 (times the 7-day median), got {raw!r}")
    spike_min = _decimal_setting(environ, "SPIKE_MIN_USD", "1.00")
    if spike_min is None or spike_min < 0:
        raw = _setting(environ, "SPIKE_MIN_USD")
        raise ConfigError("SPIKE_MIN_USD", f"must be a number of dollars, 0 or more, got {raw!r}")

    return Config(
        log_groups=tuple(log_groups),
        report_bucket=bucket,
        report_prefix=prefix,
        sender=sender,
        recipients=recipients,
        timezone=timezone,
        default_region=region,
        price_table=price_table,
        query_concurrency=_int_setting(environ, "QUERY_CONCURRENCY", 4, 1, 30),
        price_discount_percent=discount,
        price_overrides=overrides,
        # SigV4 presigned URLs live at most 7 days (and no longer than the signing credentials).
        link_expiry_seconds=_int_setting(environ, "LINK_EXPIRY_HOURS", 168, 1, 168) * 3600,
        ses_region=ses_region,
        reconcile_lag_days=_int_setting(environ, "RECONCILE_LAG_DAYS", 2, 0, 60),
        reconcile_metric=metric,
        reconcile_alert_percent=alert,
        attribution_keys=_attribution_keys(environ),
        budgets=budgets,
        spike_factor=spike_factor,
        spike_min_usd=spike_min,
    )
