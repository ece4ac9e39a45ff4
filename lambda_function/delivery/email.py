"""The report email: composed with the CSV attached while SES takes the size (else the link only), sent through
SES once per window (`once`), and the one SES sender the budget and spike alerts use too."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

from lambda_function.config import Config
from lambda_function.delivery.once import EmailOutcome, Marker, send_once
from lambda_function.report.history import History
from lambda_function.report.mail import RenderedEmail, build_message, message_bytes, render_email
from lambda_function.store import ReportStore, StoredReport
from lambda_function.summary import Summary

SES_MAX_RAW_MESSAGE = 40 * 1024 * 1024  # SES v2 SendEmail with raw content: 40 MB after encoding
# Lines the email lists per section (models, regions, each attribution key, unpriced models); the CSV has them all.
# 50,000 tenants listed in full made a 31 MB email, past what most mailboxes take (25 MB).
MAX_EMAIL_LINES = 25


class SesClient(Protocol):
    def send_email(self, **params: Any) -> Any: ...


@dataclass(frozen=True)
class Ses:
    """Sends raw MIME messages from the configured sender (SES v2 SendEmail: up to 40 MB; v1 SendRawEmail: 10 MB)."""

    client: SesClient
    sender: str

    def send(self, raw: bytes) -> str:
        """The message id SES gives. No Destinations: SES sends to the message's own To header."""
        response = self.client.send_email(FromEmailAddress=self.sender, Content={"Raw": {"Data": raw}})
        return str(response["MessageId"])


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
class ComposedEmail:
    rendered: RenderedEmail
    message: EmailMessage
    raw: bytes  # as written to out/: a large attachment takes a while to encode, so once


def zipped(csv: bytes, csv_name: str) -> bytes:
    """The CSV in a zip archive of its own (deflated; the entry dated 1980-01-01 so that the same CSV zips to the
    same bytes on a re-run). Level 1: a report's CSV repeats itself so much that it still shrinks 9-fold (8.3 MB
    to 0.9 MB at 50,000 rows, against 0.7 MB at level 6), in a third of the time."""
    buffer = io.BytesIO()
    entry = zipfile.ZipInfo(csv_name, date_time=(1980, 1, 1, 0, 0, 0))
    with zipfile.ZipFile(buffer, "w") as archive:  # (an entry given as ZipInfo takes no level from the archive)
        archive.writestr(entry, csv, zipfile.ZIP_DEFLATED, compresslevel=1)
    return buffer.getvalue()


def compose_email(
    context: dict[str, Any],
    sender: str,
    recipients: tuple[str, ...],
    csv: bytes,
    csv_name: str,
    zip_above: int = 2_000_000,
) -> ComposedEmail:
    """The CSV attached as it is up to `zip_above` bytes, zipped (`<name>.zip`) above that, while the message fits
    SES's size limit; otherwise the link only. The email says which."""
    choices: list[tuple[str, bytes | None, str]] = []
    if len(csv) <= zip_above:
        choices.append(("csv", csv, csv_name))
    choices += [("zip", zipped(csv, csv_name), csv_name + ".zip"), ("", None, csv_name)]
    for attached, attachment, name in choices:
        rendered = render_email({**context, "attached": attached, "attachment_name": name, "csv_bytes": len(csv)})
        message = build_message(
            rendered, sender=sender, recipients=recipients, attachment=attachment, attachment_name=name
        )
        raw = message_bytes(message)
        if len(raw) <= SES_MAX_RAW_MESSAGE:
            break
    return ComposedEmail(rendered, message, raw)


@dataclass(frozen=True)
class Claim:
    """Who the report email goes to, and this run's claim on sending it: it lasts until `expires` (when the run is
    surely over: a run after that takes it over and sends what this one did not)."""

    recipients: tuple[str, ...]
    force: bool
    now: Callable[[], datetime]
    expires: datetime


def send_report_once(
    store: ReportStore, report: StoredReport, ses: Ses, email: ComposedEmail, window: dict[str, str], claim: Claim
) -> EmailOutcome:
    """The report email to the claim's recipients, once per window (see `once`)."""
    fresh = Marker(
        "claimed",
        run_id=str(uuid.uuid4()),
        claimed_at=claim.now().isoformat(),
        expires_at=claim.expires.isoformat(),
        window=window,
        recipients=list(claim.recipients),
    )
    return send_once(store.email_marker(report), ses.send, email.message, fresh=fresh, now=claim.now, force=claim.force)


def report_email(
    config: Config,
    recipients: tuple[str, ...],
    store: ReportStore,
    report: StoredReport,
    csv: bytes,
    summary: Summary,
    history: History,
    watch: Any,
    reconciliation: dict[str, Any] | None,
    credentials: Any,
) -> ComposedEmail:
    """The report email (see templates/report_email.*.j2 for what each part reads), with a presigned link to the
    CSV that works as long as its signing credentials let it."""
    lifetime = link_lifetime(credentials, config.link_expiry_seconds, datetime.now(UTC))
    context = {
        "window": summary.window,
        "summary": summary.totals,
        "footer": summary.footer,
        "s3_uri": report.uri,
        "link": store.link(report, lifetime.seconds),
        "link_validity": lifetime.describe(),
        "csv_name": report.name,
        "previous": history.previous,
        "month_to_date": history.month_to_date,
        "price_changes": summary.footer.get("price_changes"),
        "watch": watch,
        "attribution": summary.footer.get("attribution", {}),
        "spike_factor": config.spike_factor,
        "spike_min_usd": config.spike_min_usd,
        "reconciliation": reconciliation,
        "max_lines": MAX_EMAIL_LINES,
    }
    return compose_email(context, config.sender, recipients, csv, report.name, config.zip_attachment_above)
