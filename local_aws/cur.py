"""The demo's CUR 2.0 Data Export: the lines AWS would bill for the demo's generated days, written as Parquet to the
embedded S3 where Data Exports puts them (`<prefix>/data/BILLING_PERIOD=YYYY-MM/<export>-00001.snappy.parquet`).

Each reported day's CSV (downloaded back from the report bucket) becomes its bill: for every priced row (account,
identity, model, source region) an input-token and an output-token line with the row's charge split 70/30 (all input
for embeddings), under the usage type and service AWS bills that model with — the Price List names the price refresh
knows (`pricing/price_list_names.csv`, `usagetype_regions.csv`): Amazon's own models as `AmazonBedrock` lines
(`USE1-NovaPro-input-tokens`), Claude and the other marketplace models as `AWS Marketplace` lines whose
`product['product_name']` is the "(Amazon Bedrock Edition)" name (`USE1-MP:USE1_InputTokenCount-Units`). So with
the bill equal to the demo's own estimate, identity by identity, what the reconciliation finds is what was put in on
purpose:

- a **price drift** on one model (`DRIFT_MODEL`, billed at `DRIFT` times our price, every identity that used it);
- a **bedrock-mantle-only caller** (`MANTLE_CALLER`): billed for Claude through the OpenAI-compatible endpoint,
  which model-invocation logging does not capture — billed, never logged;
- a **Tax** line a day (`TAX_RATE` of the day's AWS-billed Bedrock usage), to be shown apart;
- unpriced rows (an empty charge) are not billed: nothing estimated to compare.

The identity column is `line_item_iam_principal`, exactly as CUR 2.0 writes it (FACTS §4): an IAM user's ARN, or an
assumed-role session's `arn:aws:sts::<acct>:assumed-role/<Role>/<session>` — what the invocation logs carry too.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from lambda_function.pricing.model_ids import read_pairs
from lambda_function.pricing.price_list import PRICING_DIR

from .cur_parquet import cur_parquet

CUR_BUCKET = "demo-cur-exports"
CUR_PREFIX = "cur/bedrock-identity"  # <S3 path prefix>/<export name>, as Data Exports lays an export out
EXPORT = f"s3://{CUR_BUCKET}/{CUR_PREFIX}"
ACCOUNT = "123456789012"
DRIFT_MODEL, DRIFT = "amazon.nova-pro-v1:0", Decimal("1.5")
MANTLE_CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/MantleGatewayRole/responses-api"
MANTLE_PRODUCT, MANTLE_USD = "Claude Opus 4.7 (Amazon Bedrock Edition)", Decimal("18.40")
TAX_RATE = Decimal("0.08")
INPUT_SHARE = Decimal("0.7")
MICRO = Decimal("0.000001")
NATIVE, MARKETPLACE = "AmazonBedrock", "AmazonBedrockFoundationModels"


def _day_bounds(day: date, timezone: Any) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), tzinfo=timezone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=timezone).astimezone(UTC)
    return start, end


class DemoExport:
    """The export's rows, collected day by day, then written one Parquet object per billing period."""

    def __init__(self, names: Mapping[tuple[str, str], str], normalise: Callable[[str], str | None]):
        self._native = {model: name for (offer, name), model in names.items() if offer == NATIVE}
        self._marketplace = {model: name for (offer, name), model in names.items() if offer == MARKETPLACE}
        self._normalise = normalise
        self._prefixes: dict[str, str] = {}
        for prefix, region in read_pairs(PRICING_DIR / "usagetype_regions.csv", "prefix", "region").items():
            self._prefixes.setdefault(region, prefix)
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)

    # -- a day's bill ----------------------------------------------------------------------------------------------

    def bill_day(self, day: date, timezone: Any, report_csv: bytes) -> Decimal:
        """The lines AWS would bill for one reported day (its CSV), the mantle caller and the day's tax; returns
        the day's billed usage."""
        start, end = _day_bounds(day, timezone)
        native_usd = total = Decimal(0)
        for row in csv.DictReader(io.StringIO(report_csv.decode("utf-8"))):
            if not row["Charges incurred"] or not row["Pricing status"].startswith("priced"):
                continue  # unpriced or invalid: nothing estimated to compare
            model = self._normalise(row["Model Id"]) or ""
            prefix = self._prefixes.get(row["Region Name"])
            if prefix is None or (model not in self._native and model not in self._marketplace):
                continue
            charge = Decimal(row["Charges incurred"])
            if model == DRIFT_MODEL:
                charge = (charge * DRIFT).quantize(MICRO)  # billed above our price
            output_tokens = int(row["Number of output tokens"] or 0)
            input_usd = charge if output_tokens == 0 else (charge * INPUT_SHARE).quantize(MICRO)
            parts = [("input", input_usd, int(row["Number of Input tokens"] or 0))]
            if output_tokens:
                parts.append(("output", charge - input_usd, output_tokens))
            for kind, usd, tokens in parts:
                self._usage(start, end, row["Account Id"], row["Identity ARN"], model, prefix, kind, usd, tokens)
            total += charge
            native_usd += charge if model in self._native else 0
        # the bedrock-mantle caller: Claude through the OpenAI-compatible Responses API, which logging does not see
        self._line(
            start,
            end,
            entity="AWS Marketplace",
            principal=MANTLE_CALLER,
            usage_type="USE1-MP:USE1_InputTokenCount-Units",
            operation="Responses",
            usd=MANTLE_USD,
            amount=Decimal(1_226_666),
            product_code="b8mantleclaude0opus47demo",
            product_name=MANTLE_PRODUCT,
            region="us-east-1",
        )
        total += MANTLE_USD
        if native_usd:
            self._line(
                start,
                end,
                line_type="Tax",
                principal=None,
                usage_type=None,
                operation=None,
                usd=(native_usd * TAX_RATE).quantize(Decimal("0.01")),
                amount=Decimal(1),
                servicecode=NATIVE,
                product_code=NATIVE,
                product_name="Amazon Bedrock",
                region=None,
            )
        return total

    def _usage(
        self,
        start: datetime,
        end: datetime,
        account: str,
        identity: str,
        model: str,
        prefix: str,
        kind: str,
        usd: Decimal,
        tokens: int,
    ) -> None:
        region = next(region for region, p in self._prefixes.items() if p == prefix)
        if model in self._native:
            name = self._native[model]
            self._line(
                start,
                end,
                account=account,
                principal=identity,
                usage_type=f"{prefix}-{name.replace(' ', '')}-{kind}-tokens",
                operation="InvokeModelInference",
                usd=usd,
                amount=Decimal(tokens),
                servicecode=NATIVE,
                product_code=NATIVE,
                product_name="Amazon Bedrock",
                region=region,
                model=model,
            )
        else:
            name = self._marketplace[model]
            self._line(
                start,
                end,
                account=account,
                entity="AWS Marketplace",
                principal=identity,
                usage_type=f"{prefix}-MP:{prefix}_{kind.title()}TokenCount-Units",
                operation="Usage",
                usd=usd,
                amount=Decimal(tokens),
                product_code=_marketplace_code(name),
                product_name=name,
                region=region,
                model=model,
            )

    def _line(
        self,
        start: datetime,
        end: datetime,
        *,
        principal: str | None,
        usage_type: str | None,
        operation: str | None,
        usd: Decimal,
        amount: Decimal,
        product_code: str,
        product_name: str,
        region: str | None,
        account: str = ACCOUNT,
        entity: str = "AWS",
        line_type: str = "Usage",
        servicecode: str | None = None,
        model: str | None = None,
    ) -> None:
        period_start = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        product = {"product_name": product_name}
        if region:
            product["region"] = region
        if model:
            product["model"] = model
        self.rows[f"{start:%Y-%m}"].append(
            {
                "bill_billing_period_start_date": period_start,
                "bill_billing_entity": entity,
                "line_item_usage_start_date": start,
                "line_item_usage_end_date": end,
                "line_item_usage_account_id": account,
                "line_item_line_item_type": line_type,
                "line_item_product_code": product_code,
                "line_item_usage_type": usage_type,
                "line_item_operation": operation,
                "line_item_unblended_cost": float(usd),
                "line_item_net_unblended_cost": float(usd),
                "line_item_usage_amount": float(amount),
                "line_item_iam_principal": principal,
                "product_servicecode": servicecode,
                "product_region_code": region,
                "product": product,
                "resource_tags": {},
            }
        )

    # -- the objects -----------------------------------------------------------------------------------------------

    def write(self, s3: Any) -> list[str]:
        """One Parquet object per billing period, where Data Exports writes it; the keys written."""
        if not self.rows:
            return []
        s3.create_bucket(Bucket=CUR_BUCKET)  # the payer account's export bucket (written once, at the end)
        keys = []
        export_name = CUR_PREFIX.rsplit("/", 1)[-1]
        for period, rows in sorted(self.rows.items()):
            key = f"{CUR_PREFIX}/data/BILLING_PERIOD={period}/{export_name}-00001.snappy.parquet"
            s3.put_object(Bucket=CUR_BUCKET, Key=key, Body=cur_parquet(rows))
            keys.append(key)
        return keys


def _marketplace_code(name: str) -> str:
    """A stable stand-in for a marketplace product code (AWS's are opaque 25-character ids)."""
    return hashlib.sha256(name.encode()).hexdigest()[:25]
