"""Budgets: loading and validating BUDGETS (CSV or JSON, local or S3), evaluating them against the summaries, and
each 80 % / 100 % alert claimed exactly once per period with S3 conditional writes (moto)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest

from lambda_function.alerts.budgets import (
    THRESHOLDS,
    Budget,
    BudgetAlert,
    Scope,
    alert_message,
    claim_alerts,
    evaluate,
    load_budgets,
    parse_budgets,
    spend_from_summaries,
)
from lambda_function.config import load_config
from lambda_function.errors import ConfigError
from lambda_function.report.mail import message_bytes
from lambda_function.store import ReportStore
from lambda_function.summary import Summary
from lambda_function.window import day_window

KEYS = ("team", "project")
BUCKET = "budget-reports"
PREFIX = "bedrock-usage"
TZ = ZoneInfo("UTC")
BOT = "arn:aws:sts::123456789012:assumed-role/support-bot/s"
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
HEADER = "name,scope,period,amount,recipients\n"


def csv_budgets(text: str, location: str = "budgets.csv"):
    return parse_budgets(text.encode("utf-8"), location, KEYS)


# ---- loading ------------------------------------------------------------------------------------------------


def test_a_csv_file(tmp_path):
    path = tmp_path / "budgets.csv"
    # a spreadsheet's export: byte-order mark, recipients split by ';' or spaces, a blank row at the end
    path.write_bytes(
        (
            HEADER + "ML team monthly,team=ml,month,100,ml-lead@example.com; finops@example.com\n"
            ",total,day,40.50,finops@example.com  cfo@example.com\n"
            f",identity={BOT},Month,12.34,a@example.com\n"
            f",model={SONNET},day,5,b@example.com\n"
            ",,,,\n"
        ).encode("utf-8-sig")
    )
    budgets = load_budgets(str(path), s3=None, attribution_keys=KEYS)
    assert budgets == [
        Budget(
            Scope("attribution", "team", "ml"),
            "month",
            Decimal("100"),
            ("ml-lead@example.com", "finops@example.com"),
            "ML team monthly",
        ),
        Budget(Scope("total"), "day", Decimal("40.50"), ("finops@example.com", "cfo@example.com")),
        Budget(Scope("identity", "", BOT), "month", Decimal("12.34"), ("a@example.com",)),
        Budget(Scope("model", "", SONNET), "day", Decimal("5"), ("b@example.com",)),
    ]
    assert [str(b.scope) for b in budgets] == ["team=ml", "total", f"identity={BOT}", f"model={SONNET}"]


def test_a_json_file(tmp_path):
    path = tmp_path / "budgets.json"
    path.write_text(
        '[{"name": "ML", "scope": "team=ml", "period": "month", "amount": 100.10, "recipients": ["a@example.com"]},'
        ' {"scope": "project=atlas", "period": "day", "amount": "0.1", "recipients": "b@example.com; c@example.com"}]'
    )
    budgets = load_budgets(str(path), s3=None, attribution_keys=KEYS)
    # amounts are exact: 100.10 is not read through a float (100.099999...)
    assert budgets == [
        Budget(Scope("attribution", "team", "ml"), "month", Decimal("100.10"), ("a@example.com",), "ML"),
        Budget(Scope("attribution", "project", "atlas"), "day", Decimal("0.1"), ("b@example.com", "c@example.com")),
    ]


def test_budgets_from_s3(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="acme-settings")
    s3.put_object(Bucket="acme-settings", Key="finops/budgets.csv", Body=HEADER + ",total,day,40,a@example.com\n")
    s3.put_object(
        Bucket="acme-settings",
        Key="finops/budgets.json",
        Body=json.dumps([{"scope": "total", "period": "month", "amount": 900, "recipients": "a@example.com"}]),
    )
    from_csv = load_budgets("s3://acme-settings/finops/budgets.csv", s3, KEYS)
    from_json = load_budgets("s3://acme-settings/finops/budgets.json", s3, KEYS)
    assert [(b.period, b.amount) for b in from_csv + from_json] == [("day", Decimal(40)), ("month", Decimal(900))]
    with pytest.raises(ConfigError, match=r"BUDGETS: 's3://acme-settings/gone.csv' cannot be read \(NoSuchKey\)"):
        load_budgets("s3://acme-settings/gone.csv", s3, KEYS)


def test_not_set_means_no_budgets_and_a_missing_file_is_named(tmp_path):
    assert load_budgets("", s3=None, attribution_keys=KEYS) == []
    with pytest.raises(ConfigError, match="BUDGETS: .*cannot be read"):
        load_budgets(str(tmp_path / "gone.csv"), s3=None, attribution_keys=KEYS)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (HEADER + ",total,week,40,a@example.com\n", "row 2: period 'week' is not day or month"),
        (HEADER + ",total,day,40,a@example.com\n,total,week,40,a@example.com\n", "row 3: period 'week'"),
        (HEADER + ",total,day,-5,a@example.com\n", "row 2: amount '-5' is not a positive number"),
        (HEADER + ",total,day,0,a@example.com\n", "row 2: amount '0' is not a positive number"),
        (HEADER + ",total,day,NaN,a@example.com\n", "row 2: amount 'NaN' is not a positive number"),
        (HEADER + ",total,day,$40,a@example.com\n", "row 2: amount '$40' is not a number of dollars"),
        # amounts no budget has, which the arithmetic of percentages and the email cannot carry
        (HEADER + ",total,day,1e30,a@example.com\n", "row 2: amount '1e30' is not a budget"),
        (HEADER + ",total,day," + "9" * 30 + ",a@example.com\n", "row 2: amount '9999"),
        (HEADER + ",total,day,1e-1000000,a@example.com\n", "row 2: amount '1e-1000000' is not a budget"),
        (HEADER + ",total,day,0.001,a@example.com\n", "row 2: amount '0.001' is not a budget"),
        (HEADER + ",total,day,40,nobody\n", "row 2: recipient 'nobody' is not an e-mail address"),
        (HEADER + ",total,day,40,\n", "row 2: recipients is missing"),
        (HEADER + ",total,day,40\n", "row 2: recipients is missing"),
        (HEADER + ",,day,40,a@example.com\n", "row 2: scope is missing"),
        (HEADER + ",dept=ml,day,40,a@example.com\n", "row 2: scope 'dept=ml' is not total, identity=<arn>"),
        (HEADER + ",team=,day,40,a@example.com\n", "row 2: scope 'team=' names no value"),
        (HEADER + ",identity=alice,day,40,a@example.com\n", "row 2: scope 'identity=alice': an identity is an ARN"),
        (HEADER + ",total,day,40,a@example.com,extra\n", "row 2: more cells than the header has columns"),
        (HEADER + "x\x1b,total,day,40,a@example.com\n", "row 2: name 'x\\x1b' has a control character"),
        (HEADER + f"{'n' * 101},total,day,40,a@example.com\n", "row 2: name is 101 characters long"),
        (
            HEADER + ",total,day,40," + ";".join(f"u{n}@example.com" for n in range(51)) + "\n",
            "row 2: recipients names 51 addresses; at most 50",
        ),
        (
            HEADER + ",total,day,40,a@example.com\n,total,day,40.00,a@example.com\n",
            "row 3: the same budget as row 2",
        ),
        (HEADER + "x,total,day,40,a@example.com\nx,total,month,900,b@example.com\n", "row 3: the same budget as row 2"),
        ("scope,period,amount,recipients,owner\n", "has an unknown column 'owner'"),
        ("scope,period,amount\n", "has no 'recipients' column"),
        ("scope,period,amount,recipients,scope\n", "names a column twice"),
        ("", "has no header row"),
    ],
)
def test_each_csv_problem_is_named(content, says):
    with pytest.raises(ConfigError) as caught:
        csv_budgets(content)
    assert caught.value.variable == "BUDGETS"
    assert f"BUDGETS: budgets.csv {says}" in str(caught.value)


GOOD_ENTRY = {"scope": "total", "period": "day", "amount": 40, "recipients": ["a@example.com"]}


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ([{**GOOD_ENTRY, "owner": "me"}], "entry 1: unknown field 'owner'"),
        ([GOOD_ENTRY, {**GOOD_ENTRY, "period": "week"}], "entry 2: period 'week' is not day or month"),
        ([{**GOOD_ENTRY, "amount": True}], "entry 1: amount True is not a number of dollars"),
        ([{**GOOD_ENTRY, "amount": [40]}], "entry 1: amount [40] is not a number of dollars"),
        ([{**GOOD_ENTRY, "recipients": [1]}], "entry 1: recipients [1] is neither a list"),
        ([{**GOOD_ENTRY, "recipients": []}], "entry 1: recipients names no address"),
        ([{**GOOD_ENTRY, "scope": 7}], "entry 1: scope 7 is not text"),
        ([{k: v for k, v in GOOD_ENTRY.items() if k != "period"}], "entry 1: period is missing"),
        (["total"], "entry 1: is not a JSON object"),
        ({"budgets": [GOOD_ENTRY]}, "is not a JSON list of budgets"),
    ],
)
def test_each_json_problem_is_named(document, says):
    with pytest.raises(ConfigError, match="BUDGETS") as caught:
        parse_budgets(json.dumps(document).encode(), "budgets.json", KEYS)
    assert f"BUDGETS: budgets.json {says}" in str(caught.value)


def test_json_that_is_not_json_is_named():
    with pytest.raises(ConfigError, match=r"BUDGETS: budgets.json is not JSON \(Expecting"):
        parse_budgets(b'[{"scope": "total",', "budgets.json", KEYS)


def test_a_scope_key_must_be_an_attribution_key():
    content = HEADER + ",team=ml,day,40,a@example.com\n"
    assert csv_budgets(content)[0].scope == Scope("attribution", "team", "ml")
    with pytest.raises(ConfigError, match=r"scope 'team=ml' .* ATTRIBUTION_KEYS \(none configured\)"):
        parse_budgets(content.encode(), "budgets.csv", ())


def test_the_budget_setting_is_checked_at_start(tmp_path):
    good = {"LOG_GROUP_NAMES": "/aws/bedrock/invocations", "REPORT_BUCKET": "acme-reports", "AWS_REGION": "us-east-1"}
    path = tmp_path / "budgets.csv"
    path.write_text(HEADER)
    assert load_config({**good, "BUDGETS": str(path)}).budgets == str(path)
    assert load_config({**good, "BUDGETS": "s3://acme/budgets.json"}).budgets == "s3://acme/budgets.json"
    for bad in (str(tmp_path / "gone.csv"), "s3://bucket-only"):
        with pytest.raises(ConfigError) as caught:
            load_config({**good, "BUDGETS": bad})
        assert caught.value.variable == "BUDGETS"


def test_a_budget_id_is_stable_and_names_what_the_budget_is():
    (one,) = csv_budgets(HEADER + ",total,month,100,a@example.com b@example.com\n")
    (same,) = csv_budgets(HEADER + ",total,month,100.00,b@example.com;a@example.com\n")
    (more,) = csv_budgets(HEADER + ",total,month,150,a@example.com b@example.com\n")
    assert one.budget_id == same.budget_id != more.budget_id
    assert len(one.budget_id) == 12
    # a named budget keeps its id (and its alerts of the period) when its amount changes
    (named,) = csv_budgets(HEADER + "All,total,month,100,a@example.com\n")
    (raised,) = csv_budgets(HEADER + "All,total,month,150,a@example.com\n")
    assert named.budget_id == raised.budget_id


# ---- evaluation (pure) --------------------------------------------------------------------------------------


def test_thresholds_are_reached_at_or_above_their_share():
    budgets = csv_budgets(
        HEADER + "a,total,day,40,x@example.com\nb,total,month,40,x@example.com\n"
        "c,team=ml,month,40,x@example.com\nd,team=ml,day,40,x@example.com\ne,team=ops,day,40,x@example.com\n"
    )
    spends = {
        ("total", "day"): Decimal("31.99"),  # 79.975 %: not 80
        ("total", "month"): Decimal("32"),  # exactly 80 %
        ("team=ml", "month"): Decimal("39.99"),  # 99.975 %: 80, not 100, and shown as 99.9 % (not 100.0 %)
        ("team=ml", "day"): Decimal("40"),  # exactly 100 %
    }
    statuses = evaluate(budgets, lambda scope, period: spends.get((str(scope), period)), date(2026, 11, 20))
    assert [(s.budget.name, s.period_label, s.spend, s.threshold, s.percent_label) for s in statuses] == [
        ("a", "2026-11-20", Decimal("31.99"), None, "79.9"),
        ("b", "2026-11", Decimal("32"), 80, "80.0"),
        ("c", "2026-11", Decimal("39.99"), 80, "99.9"),
        ("d", "2026-11-20", Decimal("40"), 100, "100.0"),
        ("e", "2026-11-20", None, None, "-"),  # no spend known for team=ops: nothing said, nothing alerted
    ]
    assert THRESHOLDS == (80, 100)


def summary(day: date, total: str, *, identity=None, model=None, team=None) -> Summary:
    """A daily summary as a run writes it (only the parts budgets and spikes read), read back as the store does."""

    def items(costs):
        return [{"name": n, "cost_usd": c, "invocations": 1, "unpriced_invocations": 0} for n, c in costs.items()]

    document = {
        "schema": "bedrock-usage-report/summary/1",
        "window": day_window(day, TZ).as_json(),
        "total_cost_usd": total,
        "by_identity": items(identity or {}),
        "by_model": items(model or {}),
        "by_region": items({"us-east-1": total}),
    }
    if team is not None:
        document["by_attribution"] = {"team": items(team)}
    return Summary.from_json(json.dumps(document))


def test_day_and_month_spend_from_the_summaries():
    today = summary(date(2026, 11, 3), "10", identity={BOT: "4"}, model={SONNET: "10"}, team={"ml": "6", "": "4"})
    earlier = [
        summary(date(2026, 11, 1), "20", identity={BOT: "5"}, model={SONNET: "20"}, team={"ml": "20"}),
        summary(date(2026, 11, 2), "7", identity={}, model={SONNET: "7"}),  # before attribution: no by_attribution
    ]
    spend = spend_from_summaries(today, earlier)
    # day: today's figures only
    assert spend(Scope("total"), "day") == Decimal("10")
    assert spend(Scope("identity", "", BOT), "day") == Decimal("4")
    assert spend(Scope("attribution", "team", "ml"), "day") == Decimal("6")
    assert spend(Scope("attribution", "team", "ops"), "day") == Decimal("0")  # no usage today: $0
    # month to date, today included: total 20 + 7 + 10 = 37; the bot 5 + 0 (absent on the 2nd) + 4 = 9;
    # Sonnet 20 + 7 + 10 = 37; team ml 20 + (2nd has no breakdown: nothing) + 6 = 26
    assert spend(Scope("total"), "month") == Decimal("37")
    assert spend(Scope("identity", "", BOT), "month") == Decimal("9")
    assert spend(Scope("model", "", SONNET), "month") == Decimal("37")
    assert spend(Scope("attribution", "team", "ml"), "month") == Decimal("26")
    # a summary with no team breakdown today: unknown, not $0
    assert spend_from_summaries(earlier[1], [])(Scope("attribution", "team", "ml"), "day") is None


# ---- alerting once, across three daily runs (moto S3) ------------------------------------------------------


def daily_run(s3, day: date, today: Summary, budgets, run_id: str):
    """What the handler does for budgets on a daily report: the month's earlier summaries, evaluate, claim."""
    store = ReportStore(s3, BUCKET, PREFIX, TZ)
    earlier = store.summaries(day.replace(day=n) for n in range(1, day.day))
    statuses = evaluate(budgets, spend_from_summaries(today, list(earlier.values())), day)
    now = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
    alerts = claim_alerts(store, statuses, run_id=run_id, now=now)
    store.put_summary(day_window(day, TZ), today)
    return [(a.status.budget.name, a.status.period_label, a.thresholds, a.threshold) for a in alerts]


def test_a_budget_mailing_outside_the_allowed_recipients_is_refused_naming_it():
    allowed = load_config(
        {"LOG_GROUP_NAMES": "g", "REPORT_BUCKET": "bucket", "AWS_REGION": "us-east-1", "RECIPIENTS": "a@example.com"}
    ).is_allowed_recipient
    body = HEADER + "ok,total,day,10,b@example.com\nleak,total,day,10,b@example.com;spy@rival.io\n"
    with pytest.raises(ConfigError, match="row 3: recipient 'spy@rival.io' is not in ALLOWED_RECIPIENTS"):
        parse_budgets(body.encode(), "budgets.csv", KEYS, allowed)
    assert len(parse_budgets(body.encode(), "budgets.csv", KEYS)) == 2  # without an allowlist (the parser alone)


def test_80_then_100_percent_each_alerted_exactly_once(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    budgets = csv_budgets(HEADER + "ml-month,team=ml,month,100,ml@example.com\nall-day,total,day,40,f@example.com\n")
    d18, d19, d20 = date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)
    day18 = summary(d18, "35", team={"ml": "30"})
    day19 = summary(d19, "50", team={"ml": "55"})
    day20 = summary(d20, "10", team={"ml": "20"})

    # 18th: ml month to date 30 of 100 = 30 %: nothing. All, the day: 35 of 40 = 87.5 %: 80 %.
    assert daily_run(s3, d18, day18, budgets, "run-18") == [("all-day", "2026-11-18", (80,), 80)]
    # 19th: ml 30 + 55 = 85 of 100 = 85 %: 80 %. All: 50 of 40 = 125 %: 80 and 100 both new on the same run,
    # both markers written, one alert, about 100 %.
    assert daily_run(s3, d19, day19, budgets, "run-19") == [
        ("ml-month", "2026-11", (80,), 80),
        ("all-day", "2026-11-19", (80, 100), 100),
    ]
    # the 19th again (a retry): every marker exists, nothing to send
    assert daily_run(s3, d19, day19, budgets, "run-19-retry") == []
    # 20th: ml 30 + 55 + 20 = 105 of 100 = 105 %: 100 % is new, 80 % was sent on the 19th. All: 10 of 40: nothing.
    assert daily_run(s3, d20, day20, budgets, "run-20") == [("ml-month", "2026-11", (100,), 100)]
    assert daily_run(s3, d20, day20, budgets, "run-20-retry") == []

    # the markers, where the store puts them, record who claimed them with what figures
    ml = budgets[0]
    key = ReportStore(s3, BUCKET, PREFIX, TZ).budget_alert_key(ml.budget_id, "2026-11", 100)
    assert key == f"{PREFIX}/budget-alerts/2026-11/{ml.budget_id}-100.json"
    marker = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert (marker["run_id"], marker["spend_usd"], marker["amount_usd"], marker["scope"]) == (
        "run-20",
        "105",
        "100",
        "team=ml",
    )
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/budget-alerts/")["Contents"]
    assert len(listed) == 5  # all-day: 18th 80, 19th 80 + 100; ml-month: 80, 100


def test_a_new_month_alerts_again(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    (budget,) = csv_budgets(HEADER + "all,total,month,10,f@example.com\n")
    assert daily_run(s3, date(2026, 11, 30), summary(date(2026, 11, 30), "12"), [budget], "a") == [
        ("all", "2026-11", (80, 100), 100)
    ]
    # December 1st: the month starts again from $0; $9 of $10 = 90 %
    assert daily_run(s3, date(2026, 12, 1), summary(date(2026, 12, 1), "9"), [budget], "b") == [
        ("all", "2026-12", (80,), 80)
    ]


def test_a_claim_whose_answer_was_lost_is_still_ours(aws):
    # GIVEN this run's PutObject landed but its answer was lost, so the client's retry meets PreconditionFailed
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    (budget,) = csv_budgets(HEADER + "all,total,day,10,f@example.com\n")
    store = ReportStore(s3, BUCKET, PREFIX, TZ)
    key = store.budget_alert_key(budget.budget_id, "2026-11-20", 80)
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"run_id": "run-a"}))
    (status,) = evaluate([budget], lambda scope, period: Decimal(9), date(2026, 11, 20))  # 9 of 10 = 90 %
    now = datetime(2026, 11, 21, 6, tzinfo=UTC)
    # WHEN / THEN: the marker names this run, so the alert is this run's to send; another run's it is not
    assert [a.thresholds for a in claim_alerts(store, [status], run_id="run-a", now=now)] == [(80,)]
    assert claim_alerts(store, [status], run_id="run-b", now=now) == []


# ---- the alert email ----------------------------------------------------------------------------------------


def test_the_alert_email_names_budget_scope_period_spend_amount_and_percent():
    (budget,) = csv_budgets(HEADER + "<b>ML</b> team,team=ml,month,100,ml@example.com finops@example.com\n")
    (status,) = evaluate([budget], lambda scope, period: Decimal("105.5"), date(2026, 11, 20))
    message = alert_message(BudgetAlert(status, (80, 100)), sender="reports@example.com", report_label="2026-11-20")
    parsed = message_from_bytes(message_bytes(message), policy=policy.default)
    # 105.5 of 100 = 105.5 %
    assert parsed["Subject"] == "Bedrock budget <b>ML</b> team: 100% reached ($105.50 of $100.00, 2026-11)"
    assert parsed["To"] == "ml@example.com, finops@example.com"
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    for expected in (
        "The budget is used up: 105.5% used.",
        "Scope:    team = ml",
        "Period:   2026-11 (month to date, up to and including 2026-11-20)",
        "Spent:    $105.50",
        "Amount:   $100.00",
        "Used:     105.5%",
        "(80% and 100%)",
    ):
        assert expected in text
    html = parsed.get_body(preferencelist=("html",)).get_content()
    assert "&lt;b&gt;ML&lt;/b&gt; team" in html and "<b>ML</b>" not in html  # autoescaped
    assert "105.5% used" in html and "$105.50" in html and "$100.00" in html
    assert parsed.get_content_type() == "multipart/alternative"  # text and HTML, nothing attached


def test_an_80_percent_alert_on_an_identity():
    (budget,) = csv_budgets(HEADER + f",identity={BOT},day,10,a@example.com\n")
    (status,) = evaluate([budget], lambda scope, period: Decimal("8.25"), date(2026, 11, 20))
    message = alert_message(BudgetAlert(status, (80,)), sender="reports@example.com", report_label="2026-11-20")
    # 8.25 of 10 = 82.5 %
    assert message["Subject"] == f"Bedrock budget identity={BOT} (day): 80% reached ($8.25 of $10.00, 2026-11-20)"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "The budget has reached 80%: 82.5% used." in text
    assert f"Scope:    support-bot/s ({BOT})" in text
    assert "Period:   2026-11-20 (the day)" in text
