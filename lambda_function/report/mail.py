"""Render the report email from the Jinja2 templates and build the MIME message (no AWS calls here)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from lambda_function.config import PACKAGE_ROOT
from lambda_function.report.identities import friendly_identity
from lambda_function.report.rows import cost_label, money

TEMPLATES = PACKAGE_ROOT / "templates"
# Headers go out with RFC 5322's 998-character line limit (SES's RawMessage: no line over 1,000 characters): at
# the default 78, Python folds a long Subject before its first word ("Subject:" then " Bedrock usage ..." on the
# next line), which some clients show with a leading space. Bodies are encoded when the message is built, with
# RFC 2045's 76-character lines (Python's default would allow 78), so the wire policy changes header folding only.
BUILD_POLICY = policy.default.clone(max_line_length=76)
WIRE_POLICY = policy.default.clone(max_line_length=998)


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    """The one Jinja environment: HTML autoescaped, undefined names are errors rather than blanks."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = money
    env.filters["cost"] = cost_label
    env.filters["signed_money"] = lambda amount: ("+" if amount > 0 else "-" if amount < 0 else "") + money(abs(amount))
    env.filters["count"] = lambda n: f"{int(n):,}"
    # the JSON's exact decimal strings, shown to the cent: -$4.00, not $-4.00
    env.filters["usd"] = lambda text: ("-" if Decimal(text) < 0 else "") + money(abs(Decimal(text)))
    env.filters["identity"] = friendly_identity
    return env


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(context: dict[str, Any]) -> RenderedEmail:
    env = template_environment()
    subject = env.get_template("subject.txt.j2").render(**context).strip()
    return RenderedEmail(
        subject=subject,
        text=env.get_template("report_email.txt.j2").render(**context),
        html=env.get_template("report_email.html.j2").render(**context),
    )


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    recipients: tuple[str, ...],
    attachment: bytes | None,
    attachment_name: str,
) -> EmailMessage:
    """multipart/mixed: (text | html alternatives) + the CSV, byte-identical to the S3 object (or, named `.zip`,
    the CSV zipped)."""
    message = EmailMessage(policy=BUILD_POLICY)
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    # Quoted-printable always: left to itself, Python sends short-lined non-ASCII text as 8bit, and SES's RawMessage
    # reference asks for content outside 7-bit ASCII to be encoded.
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    if attachment is not None and attachment_name.endswith(".zip"):
        message.add_attachment(attachment, maintype="application", subtype="zip", filename=attachment_name)
    elif attachment is not None:
        message.add_attachment(attachment, maintype="text", subtype="csv", filename=attachment_name)
    return message


def message_bytes(message: EmailMessage) -> bytes:
    """The message as sent to SES (and written to out/)."""
    return message.as_bytes(policy=WIRE_POLICY)
