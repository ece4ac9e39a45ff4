"""CUR 2.0 line items for the bill's tests: the columns every line carries, Bedrock's own or a marketplace model's."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def cur_line(
    identity: str | None,
    usd: str,
    when: datetime,
    *,
    account: str,
    service: str = "AmazonBedrock",
    usage_type: str = "USE1-NovaLite-input-tokens",
    **extra: Any,
) -> dict[str, Any]:
    """One Usage line of `usd` at `when`; a service named "... (Amazon Bedrock Edition)" is billed as CUR bills
    marketplace models (AWS Marketplace, an opaque product code, the name in `product`)."""
    marketplace = service.endswith("(Amazon Bedrock Edition)")
    return {
        "line_item_iam_principal": identity,
        "line_item_usage_account_id": account,
        "line_item_line_item_type": "Usage",
        "line_item_product_code": "prod-abc123" if marketplace else service,
        "product_servicecode": None if marketplace else service,
        "product": {"product_name": service if marketplace else "Amazon Bedrock"},
        "bill_billing_entity": "AWS Marketplace" if marketplace else "AWS",
        "line_item_usage_type": usage_type,
        "line_item_usage_start_date": when,
        "line_item_unblended_cost": float(usd),
        **extra,
    }
