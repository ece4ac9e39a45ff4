"""Cost by team, budgets and spikes through the whole product: logs in, CSV/summary/email out (moto + the double).

Prices used (pricing/token_prices.csv): amazon.nova-lite-v1:0 in us-east-1 at $0.06 per million input tokens, so
a call of 1,000,000 input tokens and no output costs $0.06."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from lambda_function.errors import ConfigError
from lambda_function.store.reports import report_key, summary_key
from lambda_function.window import day_window
from local_aws.generate import put_records
from tests.faults import Faults
from tests.support import ACCOUNT_ID, BUCKET, GROUP, TODAY, configure, csv_rows, emails, run, summary_document

MODEL = "amazon.nova-lite-v1:0"
UTC_ZONE = ZoneInfo("UTC")
ALICE = f"arn:aws:iam::{ACCOUNT_ID}:user/alice"  # IAM tag team=search
BOB = f"arn:aws:iam::{ACCOUNT_ID}:user/bob"  # no tags
BOT = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/support-bot/session-1"  # role tag team=support


def call(day, second: int, identity: str, tokens: int = 1_000_000, team: str | None = None) -> dict:
    when = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(seconds=second)
    record = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accountId": ACCOUNT_ID,
        "identity": {"arn": identity},
        "region": "us-east-1",
        "requestId": f"r-{identity[-5:]}-{second}",
        "operation": "Converse",
        "modelId": MODEL,
        "input": {"inputContentType": "application/json", "inputTokenCount": tokens},
        "output": {"outputContentType": "application/json", "outputTokenCount": 0},
    }
    if team is not None:
        record["requestMetadata"] = {"team": team, "env": "prod"}
    return record


@pytest.fixture
def tagged(aws, monkeypatch):
    iam = aws.client("iam")
    iam.create_user(UserName="alice", Tags=[{"Key": "team", "Value": "search"}])
    iam.create_user(UserName="bob")
    iam.create_role(RoleName="support-bot", AssumeRolePolicyDocument="{}", Tags=[{"Key": "team", "Value": "support"}])
    configure(aws, monkeypatch, ATTRIBUTION_KEYS="team", SPIKE_MIN_USD="0.10")
    return aws


def test_cost_by_team_takes_metadata_over_iam_tags_and_shows_the_rest_unattributed(tagged):
    day = TODAY - timedelta(days=1)
    put_records(
        tagged.client("logs"),
        GROUP,
        [
            call(day, 10, ALICE, team="data"),  # metadata wins over alice's IAM tag (search)
            call(day, 11, ALICE, team="data"),
            call(day, 12, ALICE),  # no metadata: alice's tag, search
            call(day, 13, BOB),
            call(day, 14, BOB),
            call(day, 15, BOB),  # no metadata, no tag: unattributed
            call(day, 16, BOT, tokens=2_000_000),  # the session's role is tagged: support
        ],
    )
    response = run({"date": day.isoformat()}).response

    rows = {(r["Identity ARN"], r["team"]): r for r in csv_rows(tagged, response)}
    # the team column comes after the existing ones; alice's calls are two rows, one per team
    assert sorted(rows) == sorted([(ALICE, "data"), (ALICE, "search"), (BOB, ""), (BOT, "support")])
    assert (rows[(ALICE, "data")]["Invocations"], rows[(ALICE, "data")]["Charges incurred"]) == ("2", "0.120000")
    assert rows[(BOB, "")]["Charges incurred"] == "0.180000"  # 3 x $0.06

    by_team = {s["name"]: s["cost_usd"] for s in summary_document(tagged, response)["by_attribution"]["team"]}
    # data 2 x 0.06, search 1 x 0.06, support 2M x 0.06/M, unattributed 3 x 0.06
    assert by_team == {"data": "0.120000", "search": "0.060000", "support": "0.120000", "unattributed": "0.180000"}
    text = emails(tagged)[-1].get_body(preferencelist=("plain",)).get_content()
    assert "Cost by team" in text and "unattributed" in text


def test_a_failing_tag_lookup_is_named_and_the_report_still_goes_out(tagged, monkeypatch):
    day = TODAY - timedelta(days=1)
    other = "arn:aws:iam::999999999999:user/mallory"  # another account: IAM cannot answer for it
    put_records(tagged.client("logs"), GROUP, [call(day, 10, other), call(day, 11, ALICE)])
    response = run({"date": day.isoformat()}).response
    assert response["status"] == "ok"
    footer = summary_document(tagged, response)["footer"]["attribution"]
    assert any("999999999999" in failure for failure in footer["failures"])
    assert footer["sources"]["team"] == {"metadata": 0, "profile": 0, "iam": 1, "unattributed": 1}


def _two_days_in_one_month():
    first = TODAY - timedelta(days=2)
    second = TODAY - timedelta(days=1)
    return (first, second) if first.month == second.month else (first - timedelta(days=1), first)


def test_a_month_budget_alerts_at_80_then_100_percent_once_each(tagged, monkeypatch):
    # GIVEN a $1.00 monthly budget on the total, alerting owner@example.com
    budgets = [{"scope": "total", "period": "month", "amount": "1.00", "recipients": ["owner@example.com"]}]
    tagged.client("s3").put_object(Bucket=BUCKET, Key="config/budgets.json", Body=json.dumps(budgets).encode())
    monkeypatch.setenv("BUDGETS", f"s3://{BUCKET}/config/budgets.json")
    first, second = _two_days_in_one_month()
    # 14 calls on the first day: 14 x 0.06 = $0.84 (84 %); 6 more on the second: $1.20 in the month (120 %)
    put_records(tagged.client("logs"), GROUP, [call(first, n, BOB) for n in range(14)])
    put_records(tagged.client("logs"), GROUP, [call(second, n, BOB) for n in range(6)])

    def alerts() -> list[str]:
        return [m["Subject"] for m in emails(tagged) if m["To"] == "owner@example.com"]

    first_run = run({"date": first.isoformat()}).response
    assert first_run["budget_alerts"] == [f"total (month) {first:%Y-%m} 80 %"]
    second_run = run({"date": second.isoformat()}).response
    assert second_run["budget_alerts"] == [f"total (month) {second:%Y-%m} 100 %"]
    # a re-run of either day alerts nobody again
    run({"date": second.isoformat(), "force": True})
    run({"date": first.isoformat(), "force": True})
    assert len(alerts()) == 2 and "80" in alerts()[0] and "100" in alerts()[1]
    budget = summary_document(tagged, second_run)["watch"]["budgets"][0]
    assert (budget["spend_usd"], budget["percent"], budget["threshold_reached"]) == ("1.200000", "120.0", 100)


def _bob_spent_before(aws, day) -> None:
    """Five earlier days' summaries: bob spent 0.05, 0.06, 0.04, 0.06, 0.05 (median 0.05), all unattributed."""
    s3 = aws.client("s3")
    for n, cost in enumerate(["0.05", "0.06", "0.04", "0.06", "0.05"], start=1):
        earlier = day - timedelta(days=n)
        document = {
            "schema": "bedrock-usage-report/summary/1",
            "window": day_window(earlier, UTC_ZONE).as_json(),
            "total_cost_usd": cost,
            "by_identity": [{"name": BOB, "cost_usd": cost, "invocations": 1, "unpriced_invocations": 0}],
            "by_attribution": {"team": [{"name": "unattributed", "cost_usd": cost, "invocations": 1}]},
        }
        key = summary_key(report_key("bedrock-usage", day_window(earlier, UTC_ZONE)))
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())


def test_a_spike_against_the_7_day_median_is_flagged(tagged):
    day = TODAY - timedelta(days=1)
    _bob_spent_before(tagged, day)
    # WHEN bob makes 4 calls today: 4 x 0.06 = $0.24, above 3 x 0.05 = $0.15 and above SPIKE_MIN_USD ($0.10)
    put_records(tagged.client("logs"), GROUP, [call(day, n, BOB) for n in range(4)])
    response = run({"date": day.isoformat()}).response

    spikes = summary_document(tagged, response)["watch"]["spikes"]
    # ratio 0.24 / 0.05 = 4.80
    assert spikes["identity"] == [{"name": BOB, "cost_usd": "0.240000", "median_usd": "0.05", "ratio": "4.80"}]
    assert [s["name"] for s in spikes["team"]] == ["unattributed"]  # the team value spiked with him
    assert response["spikes"] == 2
    assert "SPEND SPIKES" in emails(tagged)[-1].get_body(preferencelist=("plain",)).get_content()


def test_below_the_factor_or_the_minimum_nothing_is_flagged(tagged, monkeypatch):
    day = TODAY - timedelta(days=1)
    _bob_spent_before(tagged, day)
    # 2 calls: $0.12 is below 3 x 0.05 = $0.15
    put_records(tagged.client("logs"), GROUP, [call(day, n, BOB) for n in range(2)])
    assert run({"date": day.isoformat()}).response["spikes"] == 0
    # 4 calls ($0.24, 4.8x) but a minimum of $0.25
    monkeypatch.setenv("SPIKE_MIN_USD", "0.25")
    put_records(tagged.client("logs"), GROUP, [call(day, 100 + n, BOB) for n in range(2)])
    assert run({"date": day.isoformat(), "force": True}).response["spikes"] == 0


def test_a_spike_is_alerted_once_a_day_to_the_budgets_covering_it(tagged, monkeypatch):
    # GIVEN a total budget far from crossed (owner@), a budget on bob (bob-lead@) and one on team=search (search@)
    budgets = [
        {"scope": "total", "period": "month", "amount": "1000", "recipients": ["owner@example.com"]},
        {"scope": f"identity={BOB}", "period": "day", "amount": "100", "recipients": ["bob-lead@example.com"]},
        {"scope": "team=search", "period": "day", "amount": "100", "recipients": ["search@example.com"]},
    ]
    tagged.client("s3").put_object(Bucket=BUCKET, Key="budgets.json", Body=json.dumps(budgets).encode())
    monkeypatch.setenv("BUDGETS", f"s3://{BUCKET}/budgets.json")
    day = TODAY - timedelta(days=1)
    _bob_spent_before(tagged, day)
    put_records(tagged.client("logs"), GROUP, [call(day, n, BOB) for n in range(4)])

    first = run({"date": day.isoformat()}).response
    run({"date": day.isoformat(), "force": True})  # a re-run: no alert twice

    def subjects(address: str) -> list[str]:
        return [m["Subject"] for m in emails(tagged) if address in m["To"] and "spike" in m["Subject"]]

    # bob's spike goes to the total's and bob's budget's recipients; the unattributed team's to the total's only
    assert len(subjects("owner@example.com")) == 2 and len(subjects("bob-lead@example.com")) == 1
    assert subjects("search@example.com") == []
    assert "bob" in subjects("bob-lead@example.com")[0] and "$0.24" in subjects("bob-lead@example.com")[0]
    assert sorted(first["budget_alerts"]) == [f"spike identity {BOB} {day}", f"spike team unattributed {day}"]


@pytest.mark.parametrize("key", ["region", "Invocations", "charge"])
def test_an_attribution_key_that_clashes_with_a_report_column_fails_before_any_query(aws, monkeypatch, key):
    configure(aws, monkeypatch, ATTRIBUTION_KEYS=f"team,{key}")
    day = TODAY - timedelta(days=1)
    put_records(aws.client("logs"), GROUP, [call(day, 10, BOB)])
    with pytest.raises(ConfigError, match=f"ATTRIBUTION_KEYS: '{key}' would clash"):
        run({"date": day.isoformat()})
    assert aws.insights.started == []  # nothing paid for


def test_alerts_that_cannot_be_claimed_or_sent_never_stop_the_report(tagged, monkeypatch):
    # GIVEN a day budget the day crosses ($0.06 of $0.05), and S3 refusing every write under budget-alerts/
    budgets = [{"scope": "total", "period": "day", "amount": "0.05", "recipients": ["owner@example.com"]}]
    tagged.client("s3").put_object(Bucket=BUCKET, Key="budgets.json", Body=json.dumps(budgets).encode())
    monkeypatch.setenv("BUDGETS", f"s3://{BUCKET}/budgets.json")
    day = TODAY - timedelta(days=1)
    put_records(tagged.client("logs"), GROUP, [call(day, 1, BOB)])
    faults = Faults()
    on_alert = lambda request: "budget-alerts" in request.url  # noqa: E731
    faults.add("PutObject", Faults.error(403, "AccessDenied", "Access Denied"), times=-1, when=on_alert)

    response = run({"date": day.isoformat()}, session=faults.session()).response

    # THEN the report and its email go out, saying the budgets could not be checked; no alert was sent
    assert response["status"] == "ok" and response["email"]["sent"] is True
    assert response["budget_alerts"] == []
    assert "AccessDenied" in summary_document(tagged, response)["watch"]["alert_failures"][0]
    assert [m["To"] for m in emails(tagged)] == ["finops@example.com"]
    assert "Alerts not sent" in emails(tagged)[0].get_body(preferencelist=("html",)).get_content()


def test_a_budget_no_one_could_mean_never_stops_the_report(tagged, monkeypatch):
    # GIVEN a budgets file whose second row asks for 1e30 dollars (once accepted, then InvalidOperation while rendering)
    body = "name,scope,period,amount,recipients\nok,total,day,10,owner@example.com\nhuge,total,day,1e30,a@example.com\n"
    tagged.client("s3").put_object(Bucket=BUCKET, Key="budgets.csv", Body=body.encode())
    monkeypatch.setenv("BUDGETS", f"s3://{BUCKET}/budgets.csv")
    day = TODAY - timedelta(days=1)
    put_records(tagged.client("logs"), GROUP, [call(day, 0, BOB)])
    # WHEN the day is reported
    response = run({"date": day.isoformat()}).response
    # THEN the report goes out, and says which row kept every budget from being checked
    assert response["status"] == "ok" and response["email"]["sent"] is True
    (failure,) = summary_document(tagged, response)["watch"]["alert_failures"]
    assert "no budget was checked" in failure and "row 3: amount '1e30' is not a budget" in failure
    (report,) = [m for m in emails(tagged) if "finops@example.com" in m["To"]]
    assert "row 3: amount '1e30' is not a budget" in report.get_body(preferencelist=("plain",)).get_content()


def test_earlier_summaries_with_figures_no_report_writes_are_left_out_and_counted(tagged):
    # GIVEN bob's steady week (median $0.05), but two days whose summaries were tampered with: a total of 1e30, and a
    # negative cost for bob (together they once made a steady bob a "spike" and crashed the rendering)
    day = TODAY - timedelta(days=1)
    _bob_spent_before(tagged, day)
    s3 = tagged.client("s3")
    for n, (total, bob) in {1: ("1e30", "0.05"), 2: ("0.05", "-0.10")}.items():
        earlier = day - timedelta(days=n)
        key = summary_key(report_key("bedrock-usage", day_window(earlier, UTC_ZONE)))
        document = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        document["total_cost_usd"] = total
        document["by_identity"][0]["cost_usd"] = bob
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())
    # WHEN bob spends as usual today: one call, $0.06
    put_records(tagged.client("logs"), GROUP, [call(day, 0, BOB)])
    response = run({"date": day.isoformat()}).response
    # THEN the report goes out, no spike is found in the three days left (0.04, 0.06, 0.05), and both are counted
    assert response["status"] == "ok" and response["spikes"] == 0
    assert summary_document(tagged, response)["footer"]["unreadable_summaries"] == 2


def _crossed_day_budget(tagged, monkeypatch):
    """A day budget the day crosses: bob's one call is $0.06 of $0.05 (120 %)."""
    budgets = [
        {"name": "all", "scope": "total", "period": "day", "amount": "0.05", "recipients": ["owner@example.com"]}
    ]
    tagged.client("s3").put_object(Bucket=BUCKET, Key="budgets.json", Body=json.dumps(budgets).encode())
    monkeypatch.setenv("BUDGETS", f"s3://{BUCKET}/budgets.json")
    day = TODAY - timedelta(days=1)
    put_records(tagged.client("logs"), GROUP, [call(day, 1, BOB)])
    return day


def to_owner(request) -> bool:
    """A SendEmail (SES v2, raw content) addressed to the budget's owner."""
    raw = base64.b64decode(json.loads(request.body)["Content"]["Raw"]["Data"])
    return b"To: owner@example.com" in raw


def _alerts_to(tagged, address: str) -> list[str]:
    return [m["Subject"] for m in emails(tagged) if address in m["To"]]


def test_an_alert_ses_refused_is_sent_by_the_next_run(tagged, monkeypatch):
    day = _crossed_day_budget(tagged, monkeypatch)
    # GIVEN SES throttling every send to the budget's owner, past the client's retries: SES took nothing
    faults = Faults()
    faults.add(
        "SendEmail",
        Faults.error(400, "TooManyRequestsException", "Maximum sending rate exceeded"),
        times=-1,
        when=to_owner,
    )
    first = run({"date": day.isoformat()}, session=faults.session()).response
    assert first["budget_alerts"] == [] and _alerts_to(tagged, "owner@example.com") == []
    (failure,) = summary_document(tagged, first)["watch"]["alert_failures"]
    assert "TooManyRequestsException" in failure and "the next run sends it" in failure
    # WHEN the next run comes (SES well again)
    second = run({"date": day.isoformat(), "force": True}).response
    # THEN it claims the released alert and sends it, once
    assert second["budget_alerts"] == [f"all {day.isoformat()} 100 %"]
    assert len(_alerts_to(tagged, "owner@example.com")) == 1
    run({"date": day.isoformat(), "force": True})
    assert len(_alerts_to(tagged, "owner@example.com")) == 1


def test_an_alert_ses_may_have_sent_is_never_sent_again(tagged, monkeypatch):
    day = _crossed_day_budget(tagged, monkeypatch)
    # GIVEN SES acting on the alert but its answer lost (a 500 after sending): it may have gone out
    faults = Faults()
    faults.add("SendEmail", Faults.answer_lost(), times=-1, when=to_owner)
    first = run({"date": day.isoformat()}, session=faults.session()).response
    assert "not sent again" in summary_document(tagged, first)["watch"]["alert_failures"][0]
    # WHEN the next run comes
    second = run({"date": day.isoformat(), "force": True}).response
    # THEN the alert is not sent a second time: at most once
    assert second["budget_alerts"] == [] and len(_alerts_to(tagged, "owner@example.com")) == 1


def test_the_email_lists_the_top_of_each_section_and_the_csv_has_all(tagged):
    # GIVEN 60 tenants, each one call ($0.06)
    day = TODAY - timedelta(days=1)
    put_records(tagged.client("logs"), GROUP, [call(day, n, BOB, team=f"tenant-{n:02d}") for n in range(60)])
    # WHEN the day is reported
    response = run({"date": day.isoformat()}).response
    # THEN the CSV has a row per tenant, the email the first 25 and how many more
    assert len({row["team"] for row in csv_rows(tagged, response)}) == 60
    (message,) = [m for m in emails(tagged) if "finops@example.com" in m["To"]]
    for part in ("plain", "html"):
        body = message.get_body(preferencelist=(part,)).get_content()
        assert "... and 35 more team values (every one is in the CSV)" in body
        assert sum(f"tenant-{n:02d}" in body for n in range(60)) == 25
