"""The MIME message as SES receives it: headers unfolded where they fit, bodies 7-bit, the CSV intact."""

from __future__ import annotations

import email
import email.policy

from lambda_function.report.mail import RenderedEmail, build_message, message_bytes

LONG_SUBJECT = "Bedrock usage 2026-11-23: $1,234,567.89 + unpriced usage (1,234,567 invocations)"
CSV = "Account Id,Identity ARN\n123456789012,arn:aws:iam::123456789012:user/zoë\n".encode()


def raw_message(text: str = "Total · $1.00 — short lines\n", html: str = "<p>Total · $1.00</p>\n") -> bytes:
    message = build_message(
        RenderedEmail(LONG_SUBJECT, text, html),
        sender="Bedrock reports <reports@example.com>",
        recipients=("finops@example.com",),
        attachment=CSV,
        attachment_name="report.csv",
    )
    return message_bytes(message)


def test_a_long_subject_stays_on_its_header_line():
    raw = raw_message()
    assert len("Subject: " + LONG_SUBJECT) > 78  # Python's default policy would fold it before its first word
    assert f"Subject: {LONG_SUBJECT}".encode() in raw.splitlines()
    assert email.message_from_bytes(raw, policy=email.policy.default)["Subject"] == LONG_SUBJECT


def test_non_ascii_bodies_with_short_lines_are_quoted_printable_not_8bit():
    raw = raw_message()
    assert raw.isascii()
    assert max(len(line) for line in raw.splitlines()) <= 998
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert text["Content-Transfer-Encoding"] == html["Content-Transfer-Encoding"] == "quoted-printable"
    assert text.get_content() == "Total · $1.00 — short lines\n"
    assert html.get_content() == "<p>Total · $1.00</p>\n"
    # quoted-printable keeps its own 76-character lines whatever the header limit
    long_text = raw_message(text="· " + "x" * 300 + "\n")
    part = email.message_from_bytes(long_text, policy=email.policy.default).get_body(preferencelist=("plain",))
    assert max(len(line) for line in part.get_payload().splitlines()) <= 76
    assert part.get_content() == "· " + "x" * 300 + "\n"


def test_the_attachment_decodes_to_the_same_bytes():
    parsed = email.message_from_bytes(raw_message(), policy=email.policy.default)
    attachment = next(parsed.iter_attachments())
    assert attachment.get_filename() == "report.csv"
    assert attachment.get_payload(decode=True) == CSV
