"""Retries by deadline and a run that always ends in time, at the HTTP boundary (botocore's before-send hook, see
faults.py) against the embedded AWS: reads are asked again for as long as the run has time, writes keep their few
attempts, and with a minute left and calls that are slow to answer the run still ends cleanly before Lambda would
kill it, its query stopped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ClientError

from lambda_function.aws import ATTEMPT_SECONDS, IDEMPOTENT_READS, READ_TIMEOUT, AwsClients
from lambda_function.errors import DeadlineExceeded, QueryFailed
from lambda_function.handler import RunTime
from local_aws.generate import generate_records, put_records

from .faults import Faults
from .support import BUCKET, DAY, END, GROUP, NOW, START, FakeTime, configure, run

EVENT = {"date": DAY.isoformat()}
THROTTLED = Faults.error(400, "ThrottlingException", "Rate exceeded")
SLOW_DOWN = Faults.error(503, "SlowDown", "Please reduce your request rate.")
BEGIN = 1_000.0  # FakeTime's clock when a run starts


@pytest.fixture(scope="module")
def records():
    return generate_records(START, END, count=200, seed=11)


@pytest.fixture
def account(aws, records, monkeypatch):
    configure(aws, monkeypatch)
    put_records(aws.client("logs"), GROUP, records)
    return aws


def slow(fake: FakeTime, seconds: float):
    """A call that takes `seconds` to answer (on the fake clock), then reaches the service."""

    def action(request: AWSPreparedRequest, service: str) -> None:
        fake.now += seconds
        return None

    return action


# -- reads are retried until the deadline, writes a few times -------------------------------------------------------


def test_five_throttled_polls_in_a_row_do_not_end_the_run(account):
    # GIVEN GetQueryResults throttled five times in a row, and the run's 15 minutes
    fake = FakeTime()
    faults = Faults()
    faults.add("GetQueryResults", THROTTLED, times=5)
    # WHEN the report runs
    response = run(EVENT, session=faults.session(), clock=fake.clock, sleep=fake.sleep).response
    # THEN the polls went on past four attempts, and the report went out
    assert response["status"] == "ok" and response["email"]["sent"] is True
    assert faults.count("GetQueryResults") >= 6
    assert len(account.sent_emails()) == 1


def test_throttled_reads_of_preflight_and_history_are_retried_past_four_attempts(account):
    # GIVEN the log group's check and the first reads of the bucket each throttled or slowed six times
    fake = FakeTime()
    faults = Faults()
    faults.add("DescribeLogGroups", THROTTLED, times=6)
    faults.add("ListObjectsV2", SLOW_DOWN, times=6)
    faults.add("GetObject", SLOW_DOWN, times=6)
    response = run(EVENT, session=faults.session(), clock=fake.clock, sleep=fake.sleep).response
    # THEN the report goes out
    assert response["status"] == "ok" and response["email"]["sent"] is True
    assert faults.count("DescribeLogGroups") >= 7


def _answer(body: dict[str, Any]):
    return Faults.answer(lambda request: body)


# Each read the product makes, called the way it does, through the product's clients (the hook answers where moto
# cannot: Bedrock's inference profiles, the Price List).
READS: dict[str, tuple[str, str | None, Any, Any]] = {
    "GetQueryResults": ("logs", None, lambda c: c.get_query_results(queryId="q-none"), None),
    "DescribeLogGroups": ("logs", None, lambda c: c.describe_log_groups(logGroupNamePrefix=GROUP, limit=1), None),
    "DescribeQueries": ("logs", None, lambda c: c.describe_queries(), None),
    "GetObject": ("s3", None, lambda c: c.get_object(Bucket=BUCKET, Key="k"), None),
    "HeadObject": ("s3", None, lambda c: c.head_object(Bucket=BUCKET, Key="k"), None),
    "ListObjectsV2": ("s3", None, lambda c: c.list_objects_v2(Bucket=BUCKET, Prefix="k"), None),
    "GetCostAndUsage": (
        "ce",
        "us-east-1",
        lambda c: c.get_cost_and_usage(
            TimePeriod={"Start": (DAY - timedelta(days=1)).isoformat(), "End": DAY.isoformat()},
            Granularity="DAILY",
            Metrics=["UnblendedCost"],
        ),
        None,
    ),
    "GetDimensionValues": (
        "ce",
        "us-east-1",
        lambda c: c.get_dimension_values(
            TimePeriod={"Start": (DAY - timedelta(days=1)).isoformat(), "End": DAY.isoformat()}, Dimension="SERVICE"
        ),
        None,
    ),
    "GetInferenceProfile": (
        "bedrock",
        None,
        lambda c: c.get_inference_profile(inferenceProfileIdentifier="p"),
        {"inferenceProfileArn": "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/p"},
    ),
    "GetCallerIdentity": ("sts", None, lambda c: c.get_caller_identity(), None),
    "ListRoleTags": ("iam", None, lambda c: c.list_role_tags(RoleName="reader"), None),
    "ListUserTags": ("iam", None, lambda c: c.list_user_tags(UserName="reader"), None),
    "GetProducts": ("pricing", "us-east-1", lambda c: c.get_products(ServiceCode="AmazonBedrock"), {"PriceList": []}),
    "GetQueryExecution": (
        "athena",
        None,
        lambda c: c.get_query_execution(QueryExecutionId="q-1"),
        {"QueryExecution": {"QueryExecutionId": "q-1", "Status": {"State": "RUNNING"}}},
    ),
}


@pytest.mark.parametrize("operation", sorted(READS))
def test_each_read_is_retried_while_the_run_has_time(account, operation):
    service, region, call, canned = READS[operation]
    assert operation in IDEMPOTENT_READS
    s3 = account.client("s3")
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")
    account.client("iam").create_role(RoleName="reader", AssumeRolePolicyDocument="{}")
    account.client("iam").create_user(UserName="reader")
    # GIVEN the read throttled (or slowed down) nine times, then answered
    faults = Faults()
    faults.add(operation, SLOW_DOWN if service == "s3" else THROTTLED, times=9)
    if canned is not None:
        faults.add(operation, _answer(canned), times=-1)
    fake = FakeTime()
    aws = AwsClients("us-east-1", session=faults.session())
    aws.bound(clock=fake.clock, sleep=fake.sleep, deadline=BEGIN + 600, reads_until=BEGIN + 500)
    client = aws.client(service, region)
    if operation == "GetQueryResults":
        # a query to poll, started past the hook
        client.start_query(logGroupName=GROUP, startTime=0, endTime=1, queryString="fields @message")
        qid = account.insights.started[-1].query_id
        call = lambda c: c.get_query_results(queryId=qid)  # noqa: E731
    # WHEN the product's client makes it, THEN the tenth attempt answers
    call(client)
    assert faults.count(operation) == 10


def test_a_write_keeps_its_four_attempts(account):
    fake = FakeTime()
    faults = Faults()
    faults.add("PutObject", SLOW_DOWN, times=9)
    aws = AwsClients("us-east-1", session=faults.session())
    aws.bound(clock=fake.clock, sleep=fake.sleep, deadline=BEGIN + 600, reads_until=BEGIN + 500)
    with pytest.raises(ClientError, match="SlowDown"):
        aws.client("s3").put_object(Bucket=BUCKET, Key="k", Body=b"x")
    assert faults.count("PutObject") == 4


def test_reads_stop_being_retried_where_their_time_ends(account):
    # GIVEN a GetObject that fails for ever, reads retried until 120 s and calls allowed until 300 s
    fake = FakeTime()
    faults = Faults()
    faults.add("GetObject", SLOW_DOWN, times=-1)
    aws = AwsClients("us-east-1", session=faults.session())
    aws.bound(clock=fake.clock, sleep=fake.sleep, deadline=BEGIN + 300, reads_until=BEGIN + 120)
    # THEN it is asked many times, none of them at or after 120 s, and the service's error is raised
    with pytest.raises(ClientError, match="SlowDown"):
        aws.client("s3").get_object(Bucket=BUCKET, Key="k")
    assert faults.count("GetObject") > 10
    assert fake.now < BEGIN + 120
    # AND without a deadline a read gets the four attempts a write gets
    faults.calls.clear()
    unbounded = AwsClients("us-east-1", session=faults.session())
    unbounded.bound(clock=fake.clock, sleep=fake.sleep, deadline=None)
    with pytest.raises(ClientError, match="SlowDown"):
        unbounded.client("s3").get_object(Bucket=BUCKET, Key="k")
    assert faults.count("GetObject") == 4


# -- the run ends in time -----------------------------------------------------------------------------------------


def test_the_run_time_leaves_a_poll_a_stop_and_delivery_after_the_queries():
    for timeout in (60.0, 120.0, 900.0):
        time = RunTime(NOW, lambda: BEGIN, timeout)
        assert time.calls_end == time.end - ATTEMPT_SECONDS
        # a poll started at the queries' deadline, then StopQuery, both as slow as an attempt can be
        assert time.queries_end + ATTEMPT_SECONDS <= time.calls_end
        assert time.queries_end + 2 * ATTEMPT_SECONDS + time.delivery_margin <= time.end
        assert time.queries_end < time.reads_end < time.calls_end
    # the figures for Lambda's 15 minutes and for a minute
    full = RunTime(NOW, lambda: BEGIN, 900.0)
    assert (full.queries_end, full.reads_end, full.calls_end) == (BEGIN + 805, BEGIN + 830, BEGIN + 875)
    short = RunTime(NOW, lambda: BEGIN, 60.0)
    assert (short.queries_end, short.reads_end, short.calls_end) == (BEGIN + 7.5, BEGIN + 32.5, BEGIN + 35)


SLOW_CALLS = {
    "answers-at-once": (),
    "polls-take-the-read-timeout": (("GetQueryResults", READ_TIMEOUT),),
    "polls-and-stop-take-a-whole-attempt": (("GetQueryResults", ATTEMPT_SECONDS), ("StopQuery", ATTEMPT_SECONDS)),
    "start-polls-and-stop-take-a-whole-attempt": (
        ("StartQuery", ATTEMPT_SECONDS),
        ("GetQueryResults", ATTEMPT_SECONDS),
        ("StopQuery", ATTEMPT_SECONDS),
    ),
    "every-call-takes-a-whole-attempt": (("*", ATTEMPT_SECONDS),),
}


@pytest.mark.parametrize("slow_calls", SLOW_CALLS.values(), ids=SLOW_CALLS.keys())
def test_a_query_that_never_finishes_ends_the_run_cleanly_before_lambda_would(account, slow_calls):
    # GIVEN 60 s of Lambda time left, a query that stays Running, and calls that are slow to answer
    account.insights.polls_until_running = 0
    account.insights.polls_until_complete = 10**9
    fake = FakeTime()
    faults = Faults()
    session = faults.session()
    for operation, seconds in slow_calls:
        if operation == "*":
            session.events.register(
                "before-send", lambda request, seconds=seconds, **_: slow(fake, seconds)(request, "")
            )
        else:
            faults.add(operation, slow(fake, seconds), times=-1)
    # WHEN the report runs, THEN it ends with a clean error, within the minute (on the modelled clock)
    with pytest.raises((QueryFailed, DeadlineExceeded), match="deadline"):
        run(EVENT, session=session, clock=fake.clock, sleep=fake.sleep, timeout=60)
    assert fake.now - BEGIN < 60
    # AND any query it started was stopped, not left scanning
    assert all(query.stopped for query in account.insights.started)
    assert account.sent_emails() == []


def test_polls_throttled_until_the_deadline_end_the_query_as_unfinished(account):
    # GIVEN a minute left and every poll throttled
    fake = FakeTime()
    faults = Faults()
    faults.add("GetQueryResults", THROTTLED, times=-1)
    with pytest.raises(QueryFailed, match="deadline.*ThrottlingException|ThrottlingException.*deadline"):
        run(EVENT, session=faults.session(), clock=fake.clock, sleep=fake.sleep, timeout=60)
    # THEN the polls were retried until the queries' deadline, the query stopped, all within the minute
    assert faults.count("GetQueryResults") > 4
    assert account.insights.started and all(query.stopped for query in account.insights.started)
    assert fake.now - BEGIN < 60


def test_the_figures_hold_for_a_whole_lambda_run_with_a_stuck_query(account):
    # GIVEN Lambda's 15 minutes, a query that stays Running and polls that each take the read timeout
    account.insights.polls_until_running = 0
    account.insights.polls_until_complete = 10**9
    fake = FakeTime()
    faults = Faults()
    faults.add("GetQueryResults", slow(fake, READ_TIMEOUT), times=-1)
    faults.add("StopQuery", slow(fake, ATTEMPT_SECONDS), times=-1)
    with pytest.raises(QueryFailed, match="deadline"):
        run(EVENT, session=faults.session(), clock=fake.clock, sleep=fake.sleep, timeout=900)
    # THEN it stopped after the queries' deadline (805 s) and well before the end
    assert BEGIN + 805 <= fake.now < BEGIN + 900 - 45
    assert all(query.stopped for query in account.insights.started)
