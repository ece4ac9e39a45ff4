"""Render the report email from the Jinja2 templates and build the MIME message (no AWS calls here)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from .identities import friendly_identity
from .report import cost_label, money

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


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
    """multipart/mixed: (text | html alternatives) + the CSV, byte-identical to the S3 object."""
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    if attachment is not None:
        message.add_attachment(attachment, maintype="text", subtype="csv", filename=attachment_name)
    return message
