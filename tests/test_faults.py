"""The report under faults, injected at the HTTP boundary (botocore's before-send hook, see faults.py): the email
goes out exactly once or the run says loudly who may not have it; deadlines hold; nothing is paid for when a
setting is wrong; the CLI always answers in JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lambda_function.__main__ import main as cli
from lambda_function.errors import (
    ConfigError,
    DeadlineExceeded,
    EmailDeliveryUncertain,
    EmailInProgress,
    EmailNotSent,
    QueryFailed,
)
from lambda_function.store import report_key
from lambda_function.window import day_window
from local_aws.generate import generate_records, put_records

from .faults import Faults, ProcessKilled
from .support import (
    BUCKET,
    DAY,
    END,
    GROUP,
    NOW,
    START,
    FakeTime,
    configure,
    emails,
    objects,
    recipients_of,
    run,
    summary_document,
    text_body,
)

EVENT = {"date": DAY.isoformat()}
MANY = [f"user{n:03d}@example.com" for n in range(120)]  # SES takes 50 per message: batches of 50, 50 and 20
LAMBDA_TIMEOUT = timedelta(minutes=15)
UTC_TZ = ZoneInfo("UTC")


@pytest.fixture(scope="module")
def records():
    return generate_records(START, END, count=300, seed=5)


@pytest.fixture
def account(aws, records, monkeypatch):
    configure(aws, monkeypatch)
    put_records(aws.client("logs"), GROUP, records)
    return aws


def marker_key(aws) -> str:
    (key,) = [k for k in objects(aws) if k.endswith(".email-sent.json")]
    return key


# -- the email: exactly once, or loudly not ------------------------------------------------------------------------


def test_throttled_and_unreachable_sends_are_retried_within_the_run(account):
    # GIVEN SES throttles twice, then the connection is refused once: none of these reached SES as a message
    faults = Faults()
    faults.add("SendEmail", Faults.error(429, "TooManyRequestsException", "Maximum sending rate exceeded."), times=2)
    faults.add("SendEmail", Faults.connection_refused(), times=1)
    # WHEN the report runs
    response = run(EVENT, session=faults.session()).response
    # THEN the fourth attempt sends it, once
    assert response["email"]["sent"] is True
    assert faults.count("SendEmail") == 4
    assert len(account.sent_emails()) == 1


@pytest.mark.parametrize(
    "fault",
    [Faults.answer_lost(500), Faults.read_timeout_after_send(), Faults.connection_closed_after_send()],
    ids=["answer-lost-500", "read-timeout", "connection-closed"],
)
def test_a_send_whose_fate_is_unknown_is_not_repeated_and_is_named(account, fault):
    # GIVEN SES accepts the message but the answer never arrives
    faults = Faults()
    faults.add("SendEmail", fault)
    # WHEN the report runs, THEN it fails loudly, naming who may not have the email
    with pytest.raises(EmailDeliveryUncertain, match="finops@example.com"):
        run(EVENT, session=faults.session())
    # AND SendEmail was not retried: one email, not two
    assert faults.count("SendEmail") == 1
    assert len(account.sent_emails()) == 1
    # AND a re-run neither sends it again nor says it was sent
    with pytest.raises(EmailDeliveryUncertain, match="force"):
        run(EVENT)
    assert len(account.sent_emails()) == 1
    # AND force sends it again
    assert run({**EVENT, "force": True}).response["email"]["sent"] is True
    assert len(account.sent_emails()) == 2


def test_a_refused_second_batch_is_resumed_without_doubling_the_first(account, monkeypatch):
    # GIVEN 120 recipients, and SES refusing the second batch of 50
    monkeypatch.setenv("RECIPIENTS", ",".join(MANY))
    faults = Faults()
    faults.add("SendEmail", Faults.error(400, "MessageRejected", "Email address is not verified."), skip=1)
    with pytest.raises(EmailNotSent, match="70 recipient"):
        run(EVENT, session=faults.session())
    assert recipients_of(account) == MANY[:50]
    # WHEN it runs again
    response = run(EVENT).response
    # THEN it sends the two batches that did not go out, and everyone has the email exactly once
    assert response["email"]["sent"] is True
    assert response["email"]["recipients"] == 70
    assert response["email"]["already_sent_to"] == 50
    assert recipients_of(account) == sorted(MANY)
    assert [len(set(m.destinations)) for m in account.sent_emails()] == [50, 50, 20]
    # AND a third run says it was sent, because SES accepted every batch
    again = run(EVENT).response
    assert again["email"]["sent"] is False and again["email"]["reason"].startswith("already sent")
    assert len(account.sent_emails()) == 3


def test_a_run_killed_between_its_claim_and_ses_leaves_the_email_to_the_next_run(account):
    # GIVEN the run dies (Lambda timeout, out of memory) after claiming the email and before SES saw it
    faults = Faults()
    faults.add("SendEmail", Faults.kill_before_send())
    with pytest.raises(ProcessKilled):
        run(EVENT, session=faults.session())
    assert account.sent_emails() == []
    # WHEN another run comes while the first one could still be alive, THEN it neither sends nor says "sent"
    with pytest.raises(EmailInProgress):
        run(EVENT, now=NOW + timedelta(minutes=1))
    assert account.sent_emails() == []
    # AND once the dead run's time is surely over (Lambda's 15 minutes), the next run sends the email
    response = run(EVENT, now=NOW + LAMBDA_TIMEOUT + timedelta(seconds=1)).response
    assert response["email"]["sent"] is True
    assert len(account.sent_emails()) == 1


def test_a_marker_write_whose_answer_is_lost_is_still_ours(account, monkeypatch):
    # GIVEN S3 stores each marker update but its answer is lost once (the retry then meets a changed ETag)
    monkeypatch.setenv("RECIPIENTS", ",".join(MANY))
    faults = Faults()
    on_marker = lambda request: ".email-sent.json" in request.url  # noqa: E731
    faults.add("PutObject", Faults.answer_lost(500), when=on_marker, skip=1)  # the first batch's record
    # WHEN the report runs, THEN it recognises its own write and sends every batch once
    response = run(EVENT, session=faults.session()).response
    assert response["email"]["sent"] is True and len(response["email"]["message_ids"]) == 3
    assert recipients_of(account) == sorted(MANY)


def test_a_run_killed_just_after_ses_accepted_is_the_one_case_of_a_duplicate(account):
    # GIVEN the run dies in the instant after SES accepted the message, before the marker recorded it
    faults = Faults()
    faults.add("SendEmail", Faults.kill_after_send())
    with pytest.raises(ProcessKilled):
        run(EVENT, session=faults.session())
    assert len(account.sent_emails()) == 1
    # WHEN the claim has expired, THEN the next run cannot know and sends it again (README: at-least-once there)
    assert run(EVENT, now=NOW + LAMBDA_TIMEOUT + timedelta(seconds=1)).response["email"]["sent"] is True
    assert len(account.sent_emails()) == 2


def test_ses_refusing_while_the_marker_cannot_be_deleted_does_not_lose_the_email(account):
    # GIVEN SES refuses the message and S3 denies every DeleteObject
    faults = Faults()
    faults.add("SendEmail", Faults.error(400, "MessageRejected", "Email address is not verified."))
    faults.add("DeleteObject", Faults.error(403, "AccessDenied", "Access Denied"), times=-1)
    with pytest.raises(EmailNotSent):
        run(EVENT, session=faults.session())
    # WHEN the report runs again right away, THEN the email goes out: nothing had been sent
    response = run(EVENT).response
    assert response["email"]["sent"] is True
    assert len(account.sent_emails()) == 1


def test_a_claim_that_cannot_be_released_expires_and_the_email_still_goes_out(account):
    # GIVEN SES refuses the message, and S3 refuses every write to the marker after the claim itself
    faults = Faults()
    faults.add("SendEmail", Faults.error(400, "MessageRejected", "Email address is not verified."))
    on_marker = lambda request: ".email-sent.json" in request.url  # noqa: E731
    faults.add("PutObject", Faults.error(403, "AccessDenied", "Access Denied"), times=-1, when=on_marker, skip=1)
    with pytest.raises(EmailNotSent):
        run(EVENT, session=faults.session())
    # WHEN the next run comes before the claim expires, THEN it does not say "already sent"
    with pytest.raises(EmailInProgress, match="claimed"):
        run(EVENT, now=NOW + timedelta(minutes=5))
    # AND after it expired, the email goes out
    assert run(EVENT, now=NOW + LAMBDA_TIMEOUT + timedelta(seconds=1)).response["email"]["sent"] is True
    assert len(account.sent_emails()) == 1


def test_concurrent_runs_of_one_window_send_one_email(account):
    # GIVEN a second run of the same window that starts while the first is about to hand its email to SES
    refused = []

    def second_run(request, service):
        with pytest.raises(EmailInProgress):
            run(EVENT)
        refused.append(True)
        return None  # then the first run's request goes on

    faults = Faults()
    faults.add("SendEmail", second_run)
    first = run(EVENT, session=faults.session()).response
    # THEN the first sends it and the second neither sends nor claims it was sent
    assert first["email"]["sent"] is True and refused == [True]
    assert len(account.sent_emails()) == 1
    # AND a run after both says it was sent
    assert run(EVENT).response["email"]["reason"].startswith("already sent")


def test_a_marker_that_cannot_be_read_is_not_taken_for_sent(account):
    # GIVEN this window's marker is garbage (a hand edit, a partial copy)
    window = day_window(DAY, UTC_TZ)
    key = report_key("bedrock-usage", window).removesuffix(".csv") + ".email-sent.json"
    account.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"\x00garbage")
    # THEN a run neither sends nor says it was sent; force sends
    with pytest.raises(EmailDeliveryUncertain, match="cannot be read"):
        run(EVENT)
    assert account.sent_emails() == []
    assert run({**EVENT, "force": True}).response["email"]["sent"] is True
    assert len(account.sent_emails()) == 1


def test_the_marker_records_each_batch_with_its_message_id(account, monkeypatch):
    monkeypatch.setenv("RECIPIENTS", ",".join(MANY))
    response = run(EVENT).response
    marker = json.loads(account.client("s3").get_object(Bucket=BUCKET, Key=marker_key(account))["Body"].read())
    assert marker["state"] == "sent"
    assert [b["message_id"] for b in marker["batches"]] == response["email"]["message_ids"]
    assert [len(b["recipients"]) for b in marker["batches"]] == [50, 50, 20]


def test_a_corrupt_earlier_summary_does_not_stop_todays_email(account):
    # GIVEN the day before's JSON summary was cut off mid-write
    before = day_window(DAY - timedelta(days=1), UTC_TZ)
    key = report_key("bedrock-usage", before).removesuffix(".csv") + ".json"
    account.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b'{"window": {"start": ')
    # WHEN today's report runs, THEN it goes out, and its footer says what was left out
    response = run(EVENT).response
    assert response["status"] == "ok" and response["email"]["sent"] is True
    assert "Earlier summaries skipped as unreadable: 1 " in text_body(emails(account)[0])
    assert summary_document(account, response)["footer"]["unreadable_summaries"] == 1


# -- S3 and Logs Insights faults -----------------------------------------------------------------------------------


def test_transient_s3_errors_are_retried(account):
    faults = Faults()
    faults.add("PutObject", Faults.error(503, "SlowDown", "Please reduce your request rate."), times=2)
    faults.add("GetObject", Faults.error(500, "InternalError", "We encountered an internal error."), times=1)
    response = run(EVENT, session=faults.session()).response
    assert response["status"] == "ok" and response["email"]["sent"] is True
    assert len(account.sent_emails()) == 1


def test_s3_denying_the_report_sends_no_email(account):
    faults = Faults()
    faults.add("PutObject", Faults.error(403, "AccessDenied", "Access Denied"), times=-1)
    with pytest.raises(Exception, match="AccessDenied"):
        run(EVENT, session=faults.session())
    assert account.sent_emails() == []


def test_a_failure_while_polling_stops_the_query(account):
    faults = Faults()
    faults.add("GetQueryResults", Faults.error(400, "AccessDeniedException", "not authorized"), times=-1)
    with pytest.raises(Exception, match="AccessDenied"):
        run(EVENT, session=faults.session())
    assert account.insights.started
    assert all(query.stopped for query in account.insights.started)
    assert account.sent_emails() == []


def test_a_concurrency_limit_that_never_clears_ends_the_run_before_lambda_would(account):
    # GIVEN 60 s left and every StartQuery refused with LimitExceededException
    fake = FakeTime()
    faults = Faults()
    faults.add("StartQuery", Faults.error(400, "LimitExceededException", "Resource limit exceeded."), times=-1)
    # WHEN the report runs, THEN it ends with a clear error, within its time
    with pytest.raises((QueryFailed, DeadlineExceeded), match="deadline"):
        run(EVENT, session=faults.session(), clock=fake.clock, sleep=fake.sleep, timeout=60)
    assert fake.now - 1_000 < 60
    assert faults.count("StartQuery") > 1  # it did retry
    assert account.sent_emails() == []


def test_retries_stop_at_the_deadline_for_every_call(account):
    # GIVEN S3 that answers 503 to every PutObject, and 60 s left
    fake = FakeTime()
    faults = Faults()
    faults.add("PutObject", Faults.error(503, "SlowDown", "Please reduce your request rate."), times=-1)
    with pytest.raises(Exception, match="SlowDown"):
        run(EVENT, session=faults.session(), clock=fake.clock, sleep=fake.sleep, timeout=60)
    # THEN a few attempts, with backoff that never passes the deadline
    assert 2 <= faults.count("PutObject") <= 5
    assert fake.now - 1_000 < 60


def test_the_cli_stops_a_stuck_query_at_its_timeout(account, capsys):
    # GIVEN a query that stays Running
    account.insights.polls_until_complete = 10**9
    fake = FakeTime()
    code = cli(["--date", DAY.isoformat(), "--timeout", "120"], clock=fake.clock, sleep=fake.sleep)
    answer = json.loads(capsys.readouterr().out)
    # THEN a JSON error, exit 2, within the timeout, and the query stopped
    assert code == 2 and answer["status"] == "error"
    assert answer["error"]["type"] == "QueryFailed" and "deadline" in answer["error"]["message"]
    assert fake.now - 1_000 <= 120
    assert all(query.stopped for query in account.insights.started)


# -- settings checked before anything is paid for -------------------------------------------------------------------


def test_a_missing_log_group_is_named_before_any_query(account, monkeypatch):
    monkeypatch.setenv("LOG_GROUP_NAMES", f"{GROUP},/aws/bedrock/typo")
    with pytest.raises(ConfigError, match="LOG_GROUP_NAMES: .*'/aws/bedrock/typo'"):
        run(EVENT)
    assert account.insights.started == []


def test_a_missing_bucket_is_named_before_any_query(account, monkeypatch):
    monkeypatch.setenv("REPORT_BUCKET", "no-such-report-bucket")
    with pytest.raises(ConfigError, match="REPORT_BUCKET: .*'no-such-report-bucket'"):
        run(EVENT)
    assert account.insights.started == []


def test_a_missing_overrides_object_is_named(account, monkeypatch):
    monkeypatch.setenv("PRICE_OVERRIDES", f"s3://{BUCKET}/negotiated/prices.csv")
    with pytest.raises(ConfigError, match=f"PRICE_OVERRIDES: .*'s3://{BUCKET}/negotiated/prices.csv'"):
        run(EVENT)
    assert account.insights.started == []


# -- the CLI always answers in JSON --------------------------------------------------------------------------------


def test_the_cli_answers_an_aws_error_in_json(account, capsys):
    faults = Faults()
    faults.add("PutObject", Faults.error(403, "AccessDenied", "Access Denied"), times=-1)
    code = cli(["--date", DAY.isoformat(), "--no-email"], session=faults.session())
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert code == 2
    assert answer["error"]["type"] == "ClientError" and "AccessDenied" in answer["error"]["message"]
    assert "__main__.py" not in captured.err  # no traceback of ours

    code = cli(["--date", DAY.isoformat(), "--no-email", "--debug"], session=faults.session())
    captured = capsys.readouterr()
    assert code == 2 and json.loads(captured.out)["status"] == "error"
    assert "Traceback" in captured.err and "__main__.py" in captured.err


# -- the link's validity is true ------------------------------------------------------------------------------------


def test_the_link_lives_no_longer_than_the_credentials_that_signed_it(account, monkeypatch):
    # GIVEN credentials that expire in 3.5 hours (as botocore reads them from AWS_CREDENTIAL_EXPIRATION)
    expiry = datetime.now(UTC) + timedelta(hours=3, minutes=30)
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", expiry.isoformat())
    run(EVENT)
    body = text_body(emails(account)[0])
    # THEN the link is signed for at most that long, and the email says 3 hours (whole hours, rounded down)
    expires = int(body.split("X-Amz-Expires=")[1].split("&")[0])
    assert 3 * 3600 <= expires <= 3.5 * 3600
    assert "valid 3 hours" in body
