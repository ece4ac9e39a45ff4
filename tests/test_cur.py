"""The bill per identity (bill/cur.py), pure: the settled day's query text, and the comparison of CUR lines with the
day's summary per identity ARN, every figure worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from lambda_function.bill.cur import (
    NO_PRINCIPAL,
    CurLine,
    CurUnreadable,
    billing_periods,
    compare_identities,
    compare_models,
    lines_of,
    role_of,
    settled_csv,
    settled_model_csv,
    settled_query,
    trimmed,
)
from lambda_function.bill.reconcile import UsageTypeNames
from lambda_function.engine import QueryAnswer
from lambda_function.pricing.model_ids import ModelCatalog
from lambda_function.summary import Summary

DAY = date(2026, 11, 30)
ALICE = "arn:aws:iam::111111111111:user/alice"
BOB = "arn:aws:iam::111111111111:user/bob"
MANTLE = "arn:aws:iam::111111111111:user/BedrockAPIKey-mantle"
ROLE = "arn:aws:sts::111111111111:assumed-role/Agents"
SONNET = "Claude Sonnet 4.5 (Amazon Bedrock Edition)"


def summary(costs: dict[str, str], invocations: int = 2) -> Summary:
    total = sum((Decimal(c) for c in costs.values()), Decimal(0))
    document = {
        "schema": "bedrock-usage-report/summary/1",
        "window": {"start": "2026-11-30T00:00:00+00:00", "end": "2026-12-01T00:00:00+00:00"},
        "total_cost_usd": f"{total:f}",
        "by_model": [],
        "by_region": [],
        "by_identity": [{"name": name, "cost_usd": cost, "invocations": invocations} for name, cost in costs.items()],
        "footer": {},
    }
    return Summary.from_json(json.dumps(document))


def usage(identity: str, usd: str, service="AmazonBedrock", usage_type="USE1-NovaLite-input-tokens", line_type="Usage"):
    return CurLine(identity, "111111111111", line_type, service, usage_type, Decimal(usd))


def by_name(result: dict) -> dict:
    return {e["identity"]: e for e in result["by_identity"]}


def test_an_exact_match_per_identity():
    # alice 3 + 1 = 4 (Nova Lite input and output), bob 6 (Sonnet, a marketplace line): billed 10 = estimated 10
    lines = [
        usage(ALICE, "3"),
        usage(ALICE, "1", usage_type="USE1-NovaLite-output-tokens"),
        usage(BOB, "6", service=SONNET, usage_type="USE1-MP:USE1_InputTokenCount-Units"),
    ]
    result = compare_identities(DAY, summary({ALICE: "4", BOB: "6"}), lines)
    assert (result["status"], result["source"], result["day"]) == ("ok", "cur", "2026-11-30")
    assert (result["billed_usd"], result["estimated_usd"], result["difference_usd"]) == (
        "10.000000",
        "10.000000",
        "0.000000",
    )
    assert (result["coverage_percent"], result["drift_percent"], result["alert"]) == ("100.0", "0.0", False)
    assert by_name(result)[ALICE] == {
        "identity": ALICE,
        "account": "111111111111",
        "billed_usd": "4.000000",
        "estimated_usd": "4.000000",
        "difference_usd": "0.000000",
        "coverage_percent": "100.0",
        "logged": True,
    }
    assert by_name(result)[BOB]["billed_usd"] == "6.000000"
    assert result["billed_not_logged"] == [] and result["billed_not_logged_usd"] == "0.000000"
    assert result["logged_not_billed"] == [] and result["other_line_types"] == {} and result["by_role"] == []


def test_a_drift_on_one_identity_comes_first():
    # bob billed 9 where we estimated 6 (a price row off by half); alice exact at 4
    lines = [usage(ALICE, "4"), usage(BOB, "9", service=SONNET)]
    result = compare_identities(DAY, summary({ALICE: "4", BOB: "6"}), lines)
    top, second = result["by_identity"]
    # bob: difference 9 - 6 = 3, coverage 6 / 9 = 66.7 %
    assert (top["identity"], top["difference_usd"], top["coverage_percent"]) == (BOB, "3.000000", "66.7")
    assert (second["identity"], second["difference_usd"]) == (ALICE, "0.000000")
    # the day: billed 13, estimated 10, difference 3 = 23.1 % of the bill (> 5 % and > $1: alert)
    assert (result["billed_usd"], result["difference_usd"], result["drift_percent"], result["alert"]) == (
        "13.000000",
        "3.000000",
        "23.1",
        True,
    )


def test_a_mantle_only_identity_is_billed_not_logged():
    # a Bedrock API key calling only through bedrock-mantle: billed 2.5, never in the invocation logs
    lines = [
        usage(ALICE, "4"),
        usage(MANTLE, "2", service=SONNET, usage_type="USE1-MP:USE1_InputTokenCount-Units"),
        usage(MANTLE, "0.5", service=SONNET, usage_type="USE1-MP:USE1_OutputTokenCount-Units"),
    ]
    result = compare_identities(DAY, summary({ALICE: "4"}), lines)
    assert result["billed_not_logged_usd"] == "2.500000"
    (entry,) = result["billed_not_logged"]
    assert (entry["identity"], entry["account"], entry["billed_usd"]) == (MANTLE, "111111111111", "2.500000")
    assert entry["services"] == [SONNET]
    assert entry["usage_types"] == ["USE1-MP:USE1_InputTokenCount-Units", "USE1-MP:USE1_OutputTokenCount-Units"]
    assert "bedrock-mantle" in entry["why"]
    assert "models" not in entry  # no names given
    mantle = by_name(result)[MANTLE]
    assert (mantle["logged"], mantle["estimated_usd"], mantle["difference_usd"], mantle["coverage_percent"]) == (
        False,
        "0.000000",
        "2.500000",
        "0.0",
    )
    # the day's totals count it: billed 6.5, estimated 4
    assert (result["billed_usd"], result["estimated_usd"]) == ("6.500000", "4.000000")


def test_a_batch_job_is_billed_not_logged_with_its_kind():
    result = compare_identities(DAY, summary({}), [usage(BOB, "1.5", usage_type="USE1-NovaLite-batch-input-tokens")])
    (entry,) = result["billed_not_logged"]
    assert entry["why"] == "batch inference: billed, never in the invocation logs"


def test_an_identity_logged_and_not_billed_is_named():
    result = compare_identities(DAY, summary({ALICE: "4", BOB: "0.25"}), [usage(ALICE, "4")])
    assert result["logged_not_billed"] == [BOB]
    bob = by_name(result)[BOB]
    assert (bob["logged"], bob["billed_usd"], bob["difference_usd"], bob["coverage_percent"]) == (
        True,
        "0.000000",
        "-0.250000",
        None,
    )


def test_a_role_with_many_sessions_is_compared_per_session_and_rolled_up():
    sessions = [f"{ROLE}/session-{n}" for n in range(3)]
    # logged: 1 + 2 + 3 = 6; billed: 1 + 2 + 3.5 = 6.5, and a fourth session billed only (0.5): the role 7 vs 6
    lines = [usage(sessions[0], "1"), usage(sessions[1], "2"), usage(sessions[2], "3.5"), usage(f"{ROLE}/late", "0.5")]
    result = compare_identities(DAY, summary({sessions[0]: "1", sessions[1]: "2", sessions[2]: "3"}), lines)
    assert by_name(result)[sessions[2]]["difference_usd"] == "0.500000"
    assert by_name(result)[f"{ROLE}/late"]["logged"] is False
    assert result["by_role"] == [
        {
            "role": ROLE,
            "account": "111111111111",
            "sessions": 4,
            "billed_usd": "7.000000",
            "estimated_usd": "6.000000",
            "difference_usd": "1.000000",
            "coverage_percent": "85.7",
        }
    ]
    assert role_of(f"{ROLE}/a/b") == ROLE and role_of(ALICE) is None
    assert (
        role_of("arn:aws-us-gov:sts::111111111111:assumed-role/R/s")
        == "arn:aws-us-gov:sts::111111111111:assumed-role/R"
    )


def test_marketplace_claude_lines_are_counted():
    lines = [
        usage(BOB, "4", service=SONNET, usage_type="USE1-MP:USE1_InputTokenCount-Units"),
        usage(BOB, "2", service=SONNET, usage_type="USE1-MP:USE1_OutputTokenCount-Units"),
    ]
    result = compare_identities(DAY, summary({BOB: "6"}), lines)
    assert by_name(result)[BOB]["billed_usd"] == "6.000000" and result["difference_usd"] == "0.000000"


def test_tax_and_credits_are_kept_apart():
    lines = [
        usage(ALICE, "4"),
        usage(ALICE, "0.4", line_type="Tax"),
        usage(ALICE, "-1", line_type="Credit"),
        usage(ALICE, "-0.5", line_type="Credit"),
        usage("", "0.1", line_type="Refund"),
    ]
    result = compare_identities(DAY, summary({ALICE: "4"}), lines)
    assert result["other_line_types"] == {"Credit": "-1.500000", "Refund": "0.100000", "Tax": "0.400000"}
    # never mixed in: alice and the day billed 4 (Usage only)
    assert (by_name(result)[ALICE]["billed_usd"], result["billed_usd"]) == ("4.000000", "4.000000")
    assert result["billed_not_logged"] == []


def test_usage_without_a_principal_is_billed_not_logged_under_its_own_name():
    result = compare_identities(DAY, summary({ALICE: "4"}), [usage(ALICE, "4"), usage("", "0.75")])
    (entry,) = result["billed_not_logged"]
    assert (entry["identity"], entry["billed_usd"]) == (NO_PRINCIPAL, "0.750000")


def test_an_identity_billed_in_two_accounts_names_both():
    lines = [usage(ALICE, "1"), CurLine(ALICE, "222222222222", "Usage", "AmazonBedrock", "USE1-x", Decimal(1))]
    result = compare_identities(DAY, summary({ALICE: "2"}), lines)
    assert by_name(result)[ALICE]["account"] == "111111111111, 222222222222"


def test_the_settled_csv():
    lines = [usage(ALICE, "5"), usage(MANTLE, "2.5")]
    estimate = summary({ALICE: "4", BOB: "1"}, invocations=7)
    result = compare_identities(DAY, estimate, lines)
    rows = settled_csv(result, estimate).decode().splitlines()
    # without the day's report CSV: per identity, the model and region columns empty
    assert rows == [
        HEADER,
        f"111111111111,{MANTLE},,,0,0.000000,2.500000,2.500000,billed only",
        # alice and bob both 1 off: by name
        f"111111111111,{ALICE},,,7,4.000000,5.000000,1.000000,matched",
        f"111111111111,{BOB},,,7,1.000000,0.000000,-1.000000,logged only",
    ]


# -- per identity, model and region (the settled CSV from the day's report CSV) --------------------------------------

HEADER = "Account Id,Identity ARN,Model Id,Region Name,Invocations,Estimated charges,Billed charges,Difference,Status"
SONNET_ID = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NAMES = UsageTypeNames(
    {
        ("AmazonBedrock", "Nova Lite"): "amazon.nova-lite-v1:0",
        ("AmazonBedrock", "Nova Pro"): "amazon.nova-pro-v1:0",
        ("x", SONNET): SONNET_ID,
    },
    {"USE1": "us-east-1", "USW2": "us-west-2"},
)
CATALOG = ModelCatalog({"us": "geo", "global": "global"}, {})


def base(model_id: str) -> str:
    return CATALOG.normalise(model_id).model_id or model_id


def logged(identity: str, model: str, charge: str | None, invocations: int, region: str = "us-east-1") -> dict:
    """A row of the day's report CSV as the store reads it back."""
    return {
        "account_id": "111111111111",
        "identity_arn": identity,
        "model_id": model,
        "region": region,
        "invocations": invocations,
        "charge": None if charge is None else Decimal(charge),
    }


def by_model(rows, lines):
    return compare_models(rows, lines, NAMES.model, NAMES.region, base)


def test_an_identity_with_two_models_one_drifting():
    # alice's Nova Lite: logged as the base id ($1, 2 calls) and through the us. profile ($3, 3 calls), billed 3 + 1
    # = 4: exact. Her Sonnet (us. profile, $6, 4 calls) billed 7 + 2 = 9: 3 over. Per identity she is 3 off (13 vs
    # 10); per model the drift is Sonnet's alone.
    rows = [
        logged(ALICE, "amazon.nova-lite-v1:0", "1", 2),
        logged(ALICE, "us.amazon.nova-lite-v1:0", "3", 3),
        logged(ALICE, f"us.{SONNET_ID}", "6", 4),
    ]
    lines = [
        usage(ALICE, "3"),
        usage(ALICE, "1", usage_type="USE1-NovaLite-output-tokens"),
        usage(ALICE, "7", service=SONNET, usage_type="USE1-MP:USE1_InputTokenCount-Units"),
        usage(ALICE, "2", service=SONNET, usage_type="USE1-MP:USE1_OutputTokenCount-Units"),
        usage(ALICE, "0.4", line_type="Tax"),  # kept apart, as per identity
    ]
    assert settled_model_csv(by_model(rows, lines)).decode().splitlines() == [
        HEADER,
        f"111111111111,{ALICE},{SONNET_ID},us-east-1,4,6.000000,9.000000,3.000000,matched",
        f"111111111111,{ALICE},amazon.nova-lite-v1:0,us-east-1,5,4.000000,4.000000,0.000000,matched",
    ]


def test_a_model_billed_only_and_a_model_logged_only():
    # alice logged Nova Lite only ($4) but was also billed Nova Pro ($0.75: a call the logs never saw); bob's Nova
    # Lite in us-west-2 ($0.25) is not on the bill; the mantle key is billed only, for Sonnet
    rows = [
        logged(ALICE, "amazon.nova-lite-v1:0", "4", 5),
        logged(BOB, "amazon.nova-lite-v1:0", "0.25", 2, "us-west-2"),
    ]
    lines = [
        usage(ALICE, "4"),
        usage(ALICE, "0.75", usage_type="USE1-NovaPro-input-tokens"),
        usage(MANTLE, "2.5", service=SONNET, usage_type="USE1-MP:USE1_InputTokenCount-Units"),
    ]
    assert settled_model_csv(by_model(rows, lines)).decode().splitlines() == [
        HEADER,
        f"111111111111,{MANTLE},{SONNET_ID},us-east-1,0,0.000000,2.500000,2.500000,billed only",
        f"111111111111,{ALICE},amazon.nova-pro-v1:0,us-east-1,0,0.000000,0.750000,0.750000,billed only",
        f"111111111111,{BOB},amazon.nova-lite-v1:0,us-west-2,2,0.250000,0.000000,-0.250000,logged only",
        f"111111111111,{ALICE},amazon.nova-lite-v1:0,us-east-1,5,4.000000,4.000000,0.000000,matched",
    ]


def test_an_unpriced_estimate_stays_unpriced_never_zero():
    # bob's Nova Lite: one row priced ($1), one unpriced (a tier we have no price for): the estimate is unpriced, not
    # $1; billed 1.5. A model the bill names with no Price List name is kept under the name it has.
    rows = [logged(BOB, "amazon.nova-lite-v1:0", "1", 2), logged(BOB, "us.amazon.nova-lite-v1:0", None, 1)]
    lines = [usage(BOB, "1.5"), usage(BOB, "0.1", usage_type="USE1-Other-x")]
    (unpriced, unknown) = by_model(rows, lines)
    assert (unpriced.estimated, unpriced.difference, unpriced.status, unpriced.invocations) == (
        None,
        None,
        "matched",
        3,
    )
    assert (unknown.model, unknown.status) == ("unknown (AmazonBedrock: USE1-Other-x)", "billed only")
    assert settled_model_csv([unpriced]).decode().splitlines()[1] == (
        f"111111111111,{BOB},amazon.nova-lite-v1:0,us-east-1,3,,1.500000,,matched"
    )


def test_a_formula_in_a_model_row_is_neutralised():
    rows = [logged("=cmd()", "@SUM(1)", "1", 1)]
    line = settled_model_csv(by_model(rows, [])).decode().splitlines()[1]
    assert line == "111111111111,'=cmd(),'@SUM(1),us-east-1,1,1.000000,0.000000,-1.000000,logged only"


def test_a_formula_in_an_identity_is_neutralised_in_the_csv():
    estimate = summary({})
    result = compare_identities(DAY, estimate, [usage("=HYPERLINK(1)", "1")])
    assert "'=HYPERLINK(1)" in settled_csv(result, estimate).decode()


# -- the query -------------------------------------------------------------------------------------------------------


def test_the_query_reads_one_partition_and_the_days_hours():
    start = datetime(2026, 11, 30, tzinfo=UTC)
    sql = settled_query(start, start + timedelta(days=1))
    assert "FROM cur" in sql
    assert "billing_period IN ('2026-11')" in sql
    assert "line_item_usage_start_date >= TIMESTAMP '2026-11-30 00:00:00'" in sql
    assert "line_item_usage_start_date < TIMESTAMP '2026-12-01 00:00:00'" in sql
    assert "product_servicecode IN ('AmazonBedrock', 'AmazonBedrockService', 'AmazonBedrockFoundationModels')" in sql
    assert "LIKE '% (Amazon Bedrock Edition)'" in sql
    assert "SUM(CAST(line_item_unblended_cost AS DECIMAL(38, 10)))" in sql


def test_a_local_day_straddling_the_month_reads_both_periods():
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 12, 1, tzinfo=berlin)  # 2026-11-30 23:00 UTC
    sql = settled_query(start, start + timedelta(days=1), "NetUnblendedCost")
    assert "billing_period IN ('2026-11', '2026-12')" in sql
    assert "TIMESTAMP '2026-11-30 23:00:00'" in sql and "TIMESTAMP '2026-12-01 23:00:00'" in sql
    assert "COALESCE(line_item_net_unblended_cost, line_item_unblended_cost)" in sql
    assert billing_periods(datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)) == ["2026-11"]


def test_the_query_takes_datetimes_only():
    with pytest.raises(TypeError):
        settled_query("2026-11-30'; DROP TABLE cur; --", datetime(2026, 12, 1, tzinfo=UTC))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        settled_query(datetime(2026, 11, 30), datetime(2026, 12, 1))  # naive: which day?


def test_lines_are_typed_from_text():
    columns = ("identity", "account", "line_type", "service", "usage_type", "usd")
    answer = QueryAnswer(columns, ((ALICE, "111111111111", "Usage", "AmazonBedrock", "u", "1.2500000000"),))
    assert lines_of(answer) == [CurLine(ALICE, "111111111111", "Usage", "AmazonBedrock", "u", Decimal("1.25"))]
    assert lines_of(QueryAnswer(columns, ((None, "1", "Tax", "AmazonBedrock", "", None),)))[0].usd == 0
    with pytest.raises(CurUnreadable, match="not a number"):
        lines_of(QueryAnswer(columns, ((ALICE, "1", "Usage", "s", "u", "NaN"),)))
    with pytest.raises(CurUnreadable, match="without the column"):
        lines_of(QueryAnswer(columns[:-1], ()))


def test_billed_not_logged_names_its_models_as_the_price_refresh_does():
    names = UsageTypeNames(
        {("AmazonBedrock", "Nova Lite"): "amazon.nova-lite-v1:0", ("x", SONNET): "anthropic.claude-sonnet-4-5"}, {}
    )
    lines = [usage(MANTLE, "2", service=SONNET), usage(MANTLE, "1"), usage(MANTLE, "1", usage_type="USE1-Other-x")]
    result = compare_identities(DAY, summary({}), lines, model_of=names.model)
    assert result["billed_not_logged"][0]["models"] == [
        "amazon.nova-lite-v1:0",
        "anthropic.claude-sonnet-4-5",
        "unknown (AmazonBedrock: USE1-Other-x)",
    ]


def test_the_lists_are_trimmed_and_counted():
    sessions = {f"{ROLE}/call-{n:03}": "1" for n in range(5)}
    result = compare_identities(DAY, summary(sessions), [usage(MANTLE, "1"), usage(BOB, "2")])
    short = trimmed(result, limit=2)
    assert (short["identities"], len(short["by_identity"])) == (7, 2)
    assert short["by_identity"] == result["by_identity"][:2]  # the largest differences kept
    assert (short["logged_not_billed_count"], short["logged_not_billed"]) == (
        5,
        [f"{ROLE}/call-000", f"{ROLE}/call-001"],
    )
    assert (short["billed_not_logged_count"], short["roles"]) == (2, 1)
