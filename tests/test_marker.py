"""The email marker read as untrusted input, and a claim that outlives its sends: a marker planted in the embedded
S3 that is not what this version (or the one before it) writes is an uncertain state named by its key, never
"already sent" and never a crash; and a run too close to its claim's end sends nothing it could not record, so
two runs around an expiring claim send each recipient one email."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botocore.awsrequest import AWSPreparedRequest

from lambda_function.aws import READ_TIMEOUT
from lambda_function.delivery.once import SCHEMA
from lambda_function.errors import DeadlineExceeded, EmailDeliveryUncertain
from lambda_function.store import report_key
from lambda_function.window import day_window
from local_aws.generate import generate_records, put_records

from .faults import Faults
from .support import BUCKET, DAY, END, GROUP, NOW, START, FakeTime, configure, recipients_of, run

EVENT = {"date": DAY.isoformat()}
WINDOW = day_window(DAY, ZoneInfo("UTC"))
KEY = report_key("bedrock-usage", WINDOW).removesuffix(".csv") + ".email-sent.json"
URI = f"s3://{BUCKET}/{KEY}"
RECIPIENT = "finops@example.com"
MANY = [f"user{n:03d}@example.com" for n in range(120)]  # batches of 50, 50 and 20
LAMBDA_TIMEOUT = timedelta(minutes=15)


@pytest.fixture(scope="module")
def records():
    return generate_records(START, END, count=100, seed=13)


@pytest.fixture
def account(aws, records, monkeypatch):
    configure(aws, monkeypatch)
    put_records(aws.client("logs"), GROUP, records)
    return aws


def plant(aws: Any, document: Any) -> None:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    aws.client("s3").put_object(Bucket=BUCKET, Key=KEY, Body=body)


def ours(**changes: Any) -> dict[str, Any]:
    """A marker as this version writes it: a claim of a run whose time is over, nothing sent yet."""
    marker = {
        "schema": SCHEMA,
        "state": "claimed",
        "run_id": "an-earlier-run",
        "claimed_at": (NOW - timedelta(hours=2)).isoformat(),
        "expires_at": (NOW - timedelta(hours=1)).isoformat(),
        "window": WINDOW.as_json(),
        "recipients": [RECIPIENT],
        "batches": [],
        "uncertain": [],
    }
    marker.update(changes)
    return {name: value for name, value in marker.items() if value is not DROP}


DROP = object()
BATCH = {"recipients": [RECIPIENT], "message_id": "ses-1", "sent_at": (NOW - timedelta(hours=2)).isoformat()}
EARLIER = {"window": WINDOW.as_json(), "recipients": [RECIPIENT]}  # what the version before the claims wrote

MALFORMED: dict[str, Any] = {
    "empty-object": {},
    "naive-expires-at": ours(expires_at=(NOW - timedelta(hours=1)).replace(tzinfo=None).isoformat()),
    "expires-at-not-a-time": ours(expires_at="tomorrow"),
    "expires-at-missing": ours(expires_at=DROP),
    "batches-not-a-list": ours(state="sent", batches={"0": BATCH}),
    "batches-a-string": ours(state="sent", batches="ses-1"),
    "batch-without-recipients": ours(batches=[{"message_id": "ses-1", "sent_at": BATCH["sent_at"]}]),
    "batch-recipients-a-string": ours(state="sent", batches=[{**BATCH, "recipients": RECIPIENT}]),
    "batch-without-message-id": ours(state="sent", batches=[{"recipients": [RECIPIENT], "sent_at": "x"}]),
    "recipients-a-string": ours(recipients=RECIPIENT),
    "recipients-empty": ours(recipients=[]),
    "batches-missing": ours(batches=DROP),
    "sent-with-no-batch": ours(state="sent"),
    "sent-to-fewer-than-its-recipients": ours(state="sent", batches=[BATCH], recipients=[RECIPIENT, "cfo@example.com"]),
    "uncertain-recipients-a-string": ours(
        state="uncertain", uncertain=[{"recipients": RECIPIENT, "error": "500", "at": "x"}]
    ),
    "state-unknown": ours(state="done"),
    "state-missing": ours(state=DROP),
    "run-id-a-number": ours(run_id=7),
    "window-not-an-object": ours(window="2026-12-04"),
    "another-schema": ours(schema="bedrock-usage-report/email/3"),
    "schema-null": ours(schema=None),
    "a-json-list": [EARLIER],
    "json-null": None,
    "not-json": b"\x00garbage",
    # look like the earlier version's marker, but are not what it wrote
    "earlier-without-recipients": {"window": WINDOW.as_json()},
    "earlier-without-window": {"recipients": [RECIPIENT]},
    "earlier-no-recipients": {**EARLIER, "recipients": []},
    "earlier-recipients-a-string": {**EARLIER, "recipients": RECIPIENT},
    "earlier-window-a-string": {**EARLIER, "window": "2026-12-04"},
    "earlier-window-without-label": {**EARLIER, "window": {k: v for k, v in WINDOW.as_json().items() if k != "label"}},
    "earlier-with-a-state": {**EARLIER, "state": "sent"},
}


@pytest.mark.parametrize("document", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_marker_that_does_not_match_its_schema_is_uncertain_and_named(account, document):
    # GIVEN this window's marker is not one any version of the function wrote
    plant(account, document)
    # WHEN the report runs, THEN it neither sends nor says "already sent", and names the marker
    with pytest.raises(EmailDeliveryUncertain, match=re.escape(URI)):
        run(EVENT)
    assert account.sent_emails() == []


def test_force_replaces_a_marker_that_does_not_match(account):
    plant(account, {})
    response = run({**EVENT, "force": True}).response
    assert response["email"]["sent"] is True
    assert len(account.sent_emails()) == 1


def test_the_earlier_versions_marker_still_means_sent(account):
    # GIVEN the marker an earlier version left once it had sent the email
    plant(account, EARLIER)
    # THEN it is read as sent: nothing is sent again
    response = run(EVENT).response
    assert response["email"]["sent"] is False and response["email"]["reason"].startswith("already sent")
    assert account.sent_emails() == []


def test_our_own_markers_are_still_read(account):
    # GIVEN a claim whose run's time is over, with nothing sent: the next run takes it over and sends
    plant(account, ours())
    assert run(EVENT).response["email"]["sent"] is True
    # AND a sent marker (the one just written) answers "already sent"
    again = run(EVENT).response
    assert again["email"]["reason"].startswith("already sent")
    assert len(account.sent_emails()) == 1
    # AND one written with a batch and an uncertain entry in full is read as what it says
    plant(account, ours(state="sent", batches=[BATCH]))
    assert run(EVENT).response["email"]["reason"].startswith("already sent")
    assert len(account.sent_emails()) == 1


# -- a claim's lifetime covers the send and its record ---------------------------------------------------------------


def test_two_runs_around_an_expiring_claim_send_one_email_per_recipient(account, monkeypatch):
    # GIVEN 120 recipients (three batches), and a first run that reaches its email late: when it has claimed the
    # marker, 75 s of its 15 minutes are left, and each SendEmail takes the read timeout to answer
    monkeypatch.setenv("RECIPIENTS", ",".join(MANY))
    fake = FakeTime()
    late = fake.now + LAMBDA_TIMEOUT.total_seconds() - 75

    def claimed_late(request: AWSPreparedRequest, service: str) -> None:
        fake.now = max(fake.now, late)
        return None

    def slow_send(request: AWSPreparedRequest, service: str) -> None:
        fake.now += READ_TIMEOUT
        return None

    faults = Faults()
    creating = lambda request: ".email-sent.json" in request.url and "If-None-Match" in request.headers  # noqa: E731
    faults.add("PutObject", claimed_late, when=creating)
    faults.add("SendEmail", slow_send, times=-1)
    # WHEN it runs, THEN it stops cleanly where a batch could no longer be sent and recorded before its claim ends
    with pytest.raises(DeadlineExceeded, match="released"):
        run(EVENT, session=faults.session(), clock=fake.clock, sleep=fake.sleep)
    first = recipients_of(account)
    assert first and len(first) < len(MANY)
    marker = json.loads(account.client("s3").get_object(Bucket=BUCKET, Key=KEY)["Body"].read())
    assert marker["state"] == "released"
    assert sorted(a for b in marker["batches"] for a in b["recipients"]) == first
    # AND a second run after the first one's time is surely over sends to the others only
    response = run(EVENT, now=NOW + LAMBDA_TIMEOUT + timedelta(seconds=1)).response
    assert response["email"]["sent"] is True
    assert response["email"]["already_sent_to"] == len(first)
    # THEN everyone has the email exactly once
    assert recipients_of(account) == sorted(MANY)


def test_a_run_with_no_time_left_for_a_send_does_not_claim_it_for_long(account):
    # GIVEN a run that reaches its email 50 s before its end (a send and its record may take 50 s)
    fake = FakeTime()
    late = fake.now + LAMBDA_TIMEOUT.total_seconds() - 50
    faults = Faults()
    creating = lambda request: ".email-sent.json" in request.url and "If-None-Match" in request.headers  # noqa: E731
    faults.add("PutObject", lambda request, service: setattr(fake, "now", late), when=creating)
    with pytest.raises(DeadlineExceeded, match="released"):
        run(EVENT, session=faults.session(), clock=fake.clock, sleep=fake.sleep)
    assert account.sent_emails() == []
    # THEN the next run, a minute later (the first one's claim would still run), sends it at once
    assert run(EVENT, now=NOW + timedelta(minutes=1)).response["email"]["sent"] is True
    assert len(account.sent_emails()) == 1
