"""The aws-us-gov partition end to end: GovCloud regions, `us-gov.` profiles and `arn:aws-us-gov:` identities are
priced at GovCloud's own prices, not left unpriced."""

from __future__ import annotations

from datetime import timedelta

from local_aws.generate import put_records

from .support import GROUP, START, configure, csv_rows, emails, run, text_body

SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
GOV_ACCOUNT = "123456789012"
ANALYST = f"arn:aws-us-gov:iam::{GOV_ACCOUNT}:user/analyst"
SERVICE = f"arn:aws-us-gov:sts::{GOV_ACCOUNT}:assumed-role/claims-service/worker-7"


def call(n, identity, model_id, region, i, o, cr=0, cw=0):
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": (START + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accountId": GOV_ACCOUNT,
        "identity": {"arn": identity},
        "region": region,
        "requestId": f"gov-{n}",
        "operation": "Converse",
        "modelId": model_id,
        "input": {"inputTokenCount": i, "cacheReadInputTokenCount": cr, "cacheWriteInputTokenCount": cw},
        "output": {
            "outputTokenCount": o,
            "outputBodyJson": {"usage": {"cacheDetails": [{"ttl": "5m", "inputTokens": cw}]}},
        },
    }


def test_govcloud_calls_are_priced_at_govcloud_prices(aws, monkeypatch):
    configure(aws, monkeypatch)
    put_records(
        aws.client("logs"),
        GROUP,
        [
            # through the us-gov. profile from us-gov-west-1, with caching
            call(1, ANALYST, f"us-gov.{SONNET_45}", "us-gov-west-1", 100_000, 10_000, cr=50_000, cw=20_000),
            # the base id in us-gov-east-1, as an ARN of the aws-us-gov partition
            call(
                2,
                SERVICE,
                f"arn:aws-us-gov:bedrock:us-gov-east-1::foundation-model/{SONNET_45}",
                "us-gov-east-1",
                150_000,
                0,
            ),
        ],
    )
    response = run({}).response
    rows = {r["Identity ARN"]: r for r in csv_rows(aws, response)}
    # FACTS §3, GovCloud Sonnet 4.5: 3.60 / 18 / 0.36 / 4.50 per 1M tokens
    # (input below Sonnet 4.5's 200K long-context threshold, 5-minute cache writes)
    #   100,000 x 3.60 = 0.36; 10,000 x 18 = 0.18; 50,000 x 0.36 = 0.018; 20,000 x 4.50 = 0.09  -> 0.648
    assert (rows[ANALYST]["Charges incurred"], rows[ANALYST]["Pricing status"]) == ("0.648000", "priced")
    #   150,000 x 3.60 = 0.54
    assert (rows[SERVICE]["Charges incurred"], rows[SERVICE]["Pricing status"]) == ("0.540000", "priced")
    assert response["total_cost_usd"] == "1.188000" and response["unpriced_models"] == []
    # and the email names the callers as people would
    body = text_body(emails(aws)[0])
    assert "analyst" in body and "claims-service/worker-7" in body and "us-gov-west-1" in body
