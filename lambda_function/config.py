"""One configuration object, built once from the environment and validated with messages that name the variable.

`SETTINGS` is the one table of settings: each entry names its environment variable, the Config field it fills, its
parser, its default and a line of documentation; `load_config` builds the Config from that table alone, so every
setting is checked once, at load. The stack's parameters and the README's settings table are held to it by
tests/test_settings_table.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lambda_function.columns import METADATA_PREFIX, RESERVED
from lambda_function.errors import ConfigError

BILL_ENGINES = ("embedded", "athena")
LOG_SOURCES = ("cloudwatch", "s3")
CUR_LAG_DAYS = 3  # RECONCILE_LAG_DAYS' default with CUR_EXPORT: CUR lines land 8-24 h late, Marketplace's up to 72 h
COST_METRICS = ("UnblendedCost", "BlendedCost", "AmortizedCost", "NetUnblendedCost", "NetAmortizedCost")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
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
_REGION = re.compile(r"[a-z]+(-[a-z0-9]+)+")
_GLUE_TABLE = re.compile(r"[A-Za-z0-9_]{1,255}\.[A-Za-z0-9_]{1,255}")  # database.table, as Glue names them
_WORKGROUP = re.compile(r"[A-Za-z0-9._-]{1,128}")  # us-east-1, us-gov-west-1, eusc-de-east-1
# Deliberately simple: one @, no spaces or commas, a dot in the domain. SES does the real verification.
_EMAIL = re.compile(r"[^@\s,;<>\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_DISPLAY_EMAIL = re.compile(r"(?P<name>[^<>]*)<(?P<addr>[^<>]+)>")
# An attribution key is looked up as a request-metadata key, an IAM tag and a Bedrock resource tag: ASCII only, as
# Bedrock's tag keys are (`[a-zA-Z0-9\s._:/=+@-]`), and no spaces, as the setting is a comma-separated list.
_ATTRIBUTION_KEY = re.compile(r"[A-Za-z0-9_.:/=+@-]{1,64}")
MAX_ATTRIBUTION_KEYS = 5  # each key is one more group-by field of the usage query: more rows per day
# An attribution key becomes a column of the frames and a header of the CSV: none of theirs (columns.RESERVED).
RESERVED_ATTRIBUTION_KEYS = RESERVED


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
    log_groups: tuple[LogGroup, ...]  # empty only with LOG_SOURCE=s3
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
    price_overrides: str = ""  # a local path or s3://bucket/key of rows in token_prices.csv's columns
    link_expiry_seconds: int = 7 * 24 * 3600
    ses_region: str = ""  # where SES sends from, when not the function's region ("" = AWS_REGION)
    reconcile_lag_days: int = 2  # reconcile the day this many days before the report's (0: no reconciliation)
    reconcile_metric: str = "UnblendedCost"
    reconcile_alert_percent: Decimal = Decimal(5)
    cur_export: str = ""  # s3://bucket/prefix of a CUR 2.0 export ("": the bill from Cost Explorer)
    cur_table: str = ""  # the Glue table Athena reads the export through ("database.table"; "": the stack's)
    bill_engine: str = "embedded"  # what runs the bill's query: "athena" or "embedded" (DuckDB, in the function)
    athena_workgroup: str = ""  # the Athena workgroup ("": the account's primary)
    attribution_keys: tuple[str, ...] = ()  # cost by team/project/...: request-metadata or tag keys
    budgets: str = ""  # a local path or s3://bucket/key of the budgets (CSV or JSON; see budgets.py)
    spike_factor: Decimal = Decimal(3)  # a day costing more than this times its 7-day median is a spike
    spike_min_usd: Decimal = Decimal("1.00")  # ... and more than this many dollars
    log_level: str = "INFO"  # the root logger's level, one of LOG_LEVELS
    # who may receive reports and alerts: addresses and "@domain" entries ("": the domains of RECIPIENTS)
    allowed_recipients: tuple[str, ...] = ()
    log_source: str = "cloudwatch"  # where the invocation logs are read: "cloudwatch" (Logs Insights) or "s3"
    log_s3_location: str = ""  # s3://bucket[/prefix]: the logging configuration's S3 destination (LOG_SOURCE=s3)
    log_table: str = ""  # the Glue table Athena reads the S3-delivered logs through ("database.table")
    log_engine: str = "embedded"  # what queries the S3-delivered logs: "athena" or "embedded"
    zip_attachment_above: int = 2_000_000  # bytes of CSV above which the email attaches it zipped (0: always)

    def __post_init__(self) -> None:
        outside = [address for address in self.recipients if not self.is_allowed_recipient(address)]
        if outside:
            raise ConfigError("RECIPIENTS", f"{outside[0]!r} is not in ALLOWED_RECIPIENTS")

    @property
    def recipient_allowlist(self) -> tuple[str, ...]:
        """ALLOWED_RECIPIENTS, or the domains of RECIPIENTS when it is not set (lower case)."""
        if self.allowed_recipients:
            return self.allowed_recipients
        return tuple(sorted({"@" + address.rsplit("@", 1)[1].lower() for address in self.recipients}))

    def is_allowed_recipient(self, address: str) -> bool:
        """Whether reports and alerts may go to `address` (a bare address): it is listed, or its domain is."""
        address = address.strip().lower()
        domain = "@" + address.rsplit("@", 1)[-1]
        allowed = self.recipient_allowlist
        return address in allowed or domain in allowed

    def require_email_settings(self, recipients: tuple[str, ...]) -> None:
        """Sending needs a sender and at least one recipient; checked only when a run sends."""
        if not self.sender:
            raise ConfigError("SENDER", "is not set; it is needed to send the report email")
        if not recipients:
            raise ConfigError("RECIPIENTS", "is not set and the event names no recipients")


T = TypeVar("T")


class _Refused(Exception):
    """A parser's reason for refusing a value; Setting.parse raises it as a ConfigError naming the variable."""


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable: the Config field it fills, how its text becomes that field's value, its default."""

    name: str  # the environment variable
    field: str  # the Config field it fills
    convert: Callable[[str], T]  # the value's text (stripped, the default when empty) to the field's value, or _Refused
    default: str | None  # the text used when the variable is unset or empty; None: it is required
    doc: str  # one line: what it sets
    fallback: str = ""  # another variable read when this one is unset or empty

    def parse(self, raw: str) -> T:
        """The typed value of the variable's raw text; a ConfigError naming the variable when it is not usable.

        A control character is refused rather than trimmed: these values end up in mail headers, S3 keys and URLs,
        and one there is a paste error at best, an injection at worst."""
        if not raw.isprintable():
            raise ConfigError(self.name, f"{raw!r} has a control character (or another non-printing one)")
        try:
            return self.convert(raw.strip() or self.default or "")
        except _Refused as refused:
            raise ConfigError(self.name, str(refused)) from None

    def read(self, environ: Mapping[str, str]) -> T:
        raw = environ.get(self.name, "")
        if self.fallback and raw.isprintable() and not raw.strip():
            other = environ.get(self.fallback, "")
            if not other.isprintable():
                raise ConfigError(self.fallback, f"{other!r} has a control character (or another non-printing one)")
            raw = other
        return self.parse(raw)


# The parsers: each takes the stripped text (the default's when the variable is empty) and returns the typed value,
# or raises _Refused saying why, in words that follow the variable's name.


def _split(value: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\s]+", value) if part.strip()]


def _log_groups(text: str) -> tuple[LogGroup, ...]:
    raw_groups = _split(text)  # none: LOG_SOURCE=s3, or refused by load_config
    groups = []
    for raw in raw_groups:
        group = parse_log_group(raw)
        if group is None:
            raise _Refused(f"{raw!r} is neither a log group name nor a log-group ARN")
        groups.append(group)
    return tuple(groups)


def _bucket(text: str) -> str:
    if not text:
        raise _Refused("is not set; name the S3 bucket that receives the CSV reports")
    if not _BUCKET.fullmatch(text):
        raise _Refused(f"{text!r} is not a valid S3 bucket name")
    return text


def _prefix(text: str) -> str:
    prefix = text.strip("/")
    if not prefix or ".." in prefix or not _PREFIX.fullmatch(prefix):
        raise _Refused(f"{prefix!r} is not a usable S3 key prefix")
    return prefix


def _sender(text: str) -> str:
    if text and not email_address(text):
        raise _Refused(f"{text!r} is not an e-mail address")
    return text


def _recipients(text: str) -> tuple[str, ...]:
    recipients = tuple(_split(text))
    for recipient in recipients:
        if not is_email(recipient):
            raise _Refused(f"{recipient!r} is not an e-mail address")
    return recipients


def _allowed_recipients(text: str) -> tuple[str, ...]:
    entries = []
    for entry in _split(text):
        if entry.startswith("@"):
            if not is_email("x" + entry):
                raise _Refused(f"{entry!r} is not an @domain entry (e.g. @example.com)")
        elif not is_email(entry):
            raise _Refused(f"{entry!r} is neither an e-mail address nor an @domain entry")
        entries.append(entry.lower())
    return tuple(dict.fromkeys(entries))


def _timezone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _Refused(f"{text!r} is not an IANA time zone (e.g. Europe/Berlin)") from None


def _aws_region(text: str) -> str:
    if not text:
        raise _Refused("is not set; Lambda sets it, on the command line export AWS_REGION")
    if not _REGION.fullmatch(text):  # it becomes part of every endpoint's host name
        raise _Refused(f"{text!r} is not an AWS region name like eu-west-1")
    return text


def _ses_region(text: str) -> str:
    if text and not _REGION.fullmatch(text):
        raise _Refused(f"{text!r} is not a region name like eu-west-1")
    return text


def _price_table(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise _Refused(f"{str(path)!r} is not a readable file")
    return path


def _object_location(text: str) -> str:
    """A setting naming a file to read: "" (none), a local path that exists, or s3://bucket/key."""
    if text and not text.startswith("s3://") and not Path(text).is_file():
        raise _Refused(f"{text!r} is neither a readable file nor an s3://bucket/key URI")
    if text.startswith("s3://") and "/" not in text.removeprefix("s3://").strip("/"):
        raise _Refused(f"{text!r} names no object; use s3://bucket/key")
    return text


def _whole_number(low: int, high: int, times: int = 1) -> Callable[[str], int]:
    """A whole number from low to high (inclusive), multiplied by `times` (e.g. hours to seconds)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _Refused(f"must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise _Refused(f"must be between {low} and {high}, got {value}")
        return value * times

    return parse


def _number(text: str) -> Decimal | None:
    """The number, or None when it is not a finite one (Decimal reads NaN, sNaN and Infinity; comparing a NaN
    raises InvalidOperation)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _discount_percent(text: str) -> Decimal:
    discount = _number(text)
    if discount is None:
        raise _Refused(f"must be a number of percent, got {text!r}")
    if not Decimal(0) <= discount < Decimal(100):
        raise _Refused(f"must be from 0 up to (not including) 100, got {text}")
    return discount


def _cost_metric(text: str) -> str:
    if text not in COST_METRICS:
        raise _Refused(f"{text!r} is not one of {', '.join(COST_METRICS)}")
    return text


def _alert_percent(text: str) -> Decimal:
    alert = _number(text)
    if alert is None or alert < 0:
        raise _Refused(f"must be a number of percent, got {text!r}")
    return alert


def _cur_export(text: str) -> str:
    """ "" or s3://bucket[/prefix] (kept without a trailing slash)."""
    if not text:
        return ""
    if not text.startswith("s3://"):
        raise _Refused(f"{text!r} is not an s3://bucket/prefix URI")
    bucket, _, prefix = text.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.fullmatch(bucket):
        raise _Refused(f"{bucket!r} is not a valid S3 bucket name")
    if prefix and (".." in prefix or not _PREFIX.fullmatch(prefix)):
        raise _Refused(f"{prefix!r} is not a usable S3 key prefix")
    return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"


def _cur_table(text: str) -> str:
    if text and not _GLUE_TABLE.fullmatch(text):
        raise _Refused(f"{text!r} is not database.table (letters, digits and _)")
    return text


def _bill_engine(text: str) -> str:
    engine = text.lower()
    if engine not in BILL_ENGINES:
        raise _Refused(f"{text!r} is not one of {', '.join(BILL_ENGINES)}")
    return engine


def _log_source(text: str) -> str:
    source = text.lower()
    if source not in LOG_SOURCES:
        raise _Refused(f"{text!r} is not one of {', '.join(LOG_SOURCES)}")
    return source


def _athena_workgroup(text: str) -> str:
    if text and not _WORKGROUP.fullmatch(text):
        raise _Refused(f"{text!r} is not a workgroup name (1-128 letters, digits, . _ -)")
    return text


def _attribution_keys(text: str) -> tuple[str, ...]:
    keys = [part.strip() for part in text.split(",") if part.strip()]
    for key in keys:
        if not _ATTRIBUTION_KEY.fullmatch(key):
            raise _Refused(f"{key!r} is not a tag key: 1 to 64 letters, digits or _ . : / = + - @")
    if len(keys) > MAX_ATTRIBUTION_KEYS:
        raise _Refused(f"names {len(keys)} keys; at most {MAX_ATTRIBUTION_KEYS} are allowed")
    # Compared without case: two CSV columns `team` and `Team` would be a typo, not two ways to split the cost.
    seen: dict[str, str] = {}
    for key in keys:
        if key.lower() in seen:
            raise _Refused(f"{key!r} repeats {seen[key.lower()]!r}")
        seen[key.lower()] = key
    taken = [key for key in keys if key.lower() in RESERVED_ATTRIBUTION_KEYS or key.startswith(METADATA_PREFIX)]
    if taken:
        raise _Refused(f"{', '.join(map(repr, taken))} would clash with a column of the report; choose another")
    return tuple(keys)


def _spike_factor(text: str) -> Decimal:
    factor = _number(text)
    if factor is None or factor <= 1:
        raise _Refused(f"must be a number above 1 (times the 7-day median), got {text!r}")
    return factor


def _spike_min_usd(text: str) -> Decimal:
    minimum = _number(text)
    if minimum is None or minimum < 0:
        raise _Refused(f"must be a number of dollars, 0 or more, got {text!r}")
    return minimum


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise _Refused(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


# The settings, in the order they are checked (the first problem found is raised).
SETTINGS: tuple[Setting[Any], ...] = (
    Setting(
        "LOG_SOURCE", "log_source", _log_source, "cloudwatch", "where the invocation logs are read: cloudwatch or s3"
    ),
    Setting(
        "LOG_GROUP_NAMES",
        "log_groups",
        _log_groups,
        "",
        "comma-separated log group names, or log-group ARNs (cross-account, other regions); needed with cloudwatch",
    ),
    Setting(
        "LOG_S3_LOCATION",
        "log_s3_location",
        _cur_export,
        "",
        "s3://bucket/prefix the invocation logs are delivered to (the logging configuration's; needed with s3)",
    ),
    Setting("LOG_TABLE", "log_table", _cur_table, "", "the S3-delivered logs' Glue table for Athena (database.table)"),
    Setting(
        "LOG_ENGINE", "log_engine", _bill_engine, "embedded", "what queries the S3-delivered logs: athena or embedded"
    ),
    Setting("REPORT_BUCKET", "report_bucket", _bucket, None, "the S3 bucket that receives the CSV reports"),
    Setting("REPORT_PREFIX", "report_prefix", _prefix, "bedrock-usage", "key prefix of the reports in the bucket"),
    Setting("SENDER", "sender", _sender, "", "From address of the email, a verified SES identity (needed to send)"),
    Setting("RECIPIENTS", "recipients", _recipients, "", "comma-separated addresses (unless the event names them)"),
    Setting("REPORT_TIMEZONE", "timezone", _timezone, "UTC", "IANA zone for 'yesterday' and for plain dates"),
    Setting(
        "AWS_REGION",
        "default_region",
        _aws_region,
        None,
        "region of log groups given by name, S3 and SES (set by Lambda; AWS_DEFAULT_REGION when unset)",
        fallback="AWS_DEFAULT_REGION",
    ),
    Setting("PRICE_TABLE", "price_table", _price_table, str(DEFAULT_PRICE_TABLE), "the price table (a local CSV)"),
    Setting(
        "PRICE_DISCOUNT_PERCENT",
        "price_discount_percent",
        _discount_percent,
        "0",
        "discount on list prices, in percent (0 up to, not including, 100)",
    ),
    Setting(
        "PRICE_OVERRIDES",
        "price_overrides",
        _object_location,
        "",
        "negotiated price rows: a local path or s3://bucket/key",
    ),
    Setting(
        "QUERY_CONCURRENCY", "query_concurrency", _whole_number(1, 30), "4", "Logs Insights queries run at once (1-30)"
    ),
    Setting(
        "LINK_EXPIRY_HOURS",
        "link_expiry_seconds",
        # SigV4 presigned URLs live at most 7 days (and no longer than the signing credentials).
        _whole_number(1, 168, times=3600),
        "168",
        "hours the email's presigned CSV link is valid (1-168)",
    ),
    Setting("SES_REGION", "ses_region", _ses_region, "", "the region whose SES sends the email (empty: AWS_REGION)"),
    Setting(
        "ZIP_ATTACHMENT_ABOVE_MB",
        "zip_attachment_above",
        _whole_number(0, 40, times=1_000_000),
        "2",
        "attach the CSV zipped (.csv.zip) when it is larger than this many MB (0: always zipped)",
    ),
    Setting(
        "RECONCILE_LAG_DAYS",
        "reconcile_lag_days",
        _whole_number(0, 60),
        "2",
        f"reconcile the day this many days before the report's with the bill (0: off; {CUR_LAG_DAYS} with CUR_EXPORT)",
    ),
    Setting(
        "RECONCILE_COST_METRIC",
        "reconcile_metric",
        _cost_metric,
        "UnblendedCost",
        "the Cost Explorer metric billed figures are read in",
    ),
    Setting(
        "RECONCILE_ALERT_PERCENT",
        "reconcile_alert_percent",
        _alert_percent,
        "5",
        "drift (share of the bill) above which, and above $1, the drift alarm fires",
    ),
    Setting(
        "CUR_EXPORT",
        "cur_export",
        _cur_export,
        "",
        "s3://bucket/prefix of a CUR 2.0 export with IAM principal data (empty: Cost Explorer, no identities)",
    ),
    Setting("CUR_TABLE", "cur_table", _cur_table, "", "the export's Glue table for Athena (empty: the stack's)"),
    Setting("BILL_ENGINE", "bill_engine", _bill_engine, "embedded", "what queries the export: athena or embedded"),
    Setting("ATHENA_WORKGROUP", "athena_workgroup", _athena_workgroup, "", "the Athena workgroup (empty: primary)"),
    Setting(
        "ATTRIBUTION_KEYS",
        "attribution_keys",
        _attribution_keys,
        "",
        f"cost by team/project/...: up to {MAX_ATTRIBUTION_KEYS} request-metadata or tag keys, comma-separated",
    ),
    Setting("BUDGETS", "budgets", _object_location, "", "budgets (CSV or JSON): a local path or s3://bucket/key"),
    Setting(
        "SPIKE_FACTOR",
        "spike_factor",
        _spike_factor,
        "3",
        "a day above this many times its trailing 7-day median is a spike (above 1)",
    ),
    Setting(
        "SPIKE_MIN_USD", "spike_min_usd", _spike_min_usd, "1.00", "spikes below this day cost in USD are not flagged"
    ),
    Setting(
        "LOG_LEVEL", "log_level", _log_level, "INFO", f"the function's log level: {', '.join(LOG_LEVELS)} (any case)"
    ),
    Setting(
        "ALLOWED_RECIPIENTS",
        "allowed_recipients",
        _allowed_recipients,
        "",
        "who may receive reports and alerts: addresses and @domain entries (empty: the domains of RECIPIENTS)",
    ),
)


def load_config(environ: Mapping[str, str]) -> Config:
    """Build and validate the Config from environment variables, setting by setting as SETTINGS lists them; the
    first problem found is raised."""
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        values[setting.field] = setting.read(environ)
        if setting.field == "log_groups" and not values["log_groups"] and values["log_source"] == "cloudwatch":
            raise ConfigError(
                "LOG_GROUP_NAMES", "is not set; give one or more log group names or ARNs, comma-separated"
            )
        if setting.field == "log_s3_location" and not values["log_s3_location"] and values["log_source"] == "s3":
            raise ConfigError(
                "LOG_S3_LOCATION", "is not set; LOG_SOURCE=s3 reads the logs from that s3://bucket/prefix"
            )
    lag = environ.get("RECONCILE_LAG_DAYS", "")
    if values["cur_export"] and lag.isprintable() and not lag.strip():
        values["reconcile_lag_days"] = CUR_LAG_DAYS  # the bill lands 24-72 h late; an explicit value is kept
    return Config(**values)
