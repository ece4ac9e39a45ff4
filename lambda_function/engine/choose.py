"""Which engine runs a query (BILL_ENGINE, LOG_ENGINE), on the run's clock, and what Athena charges for a scan."""

from __future__ import annotations

from decimal import Decimal

from lambda_function.aws import AwsClients
from lambda_function.engine import SqlEngine

ATHENA_USD_PER_TB, ATHENA_MIN_BYTES = Decimal(5), 10 * 1000**2  # Athena bills $5 per TB scanned, 10 MB at least


def engine_named(name: str, aws: AwsClients, workgroup: str = "") -> SqlEngine:
    """`athena` or `embedded`, with the run's clock: their polls and downloads end by the run's deadline."""
    policy = aws.policy
    if name == "athena":
        from lambda_function.engine.athena import AthenaEngine

        return AthenaEngine(aws.client("athena"), workgroup or "primary", sleep=policy.sleep, clock=policy.clock)
    from lambda_function.engine.embedded import EmbeddedEngine

    return EmbeddedEngine(aws.client("s3"), clock=policy.clock)


def scan_cost(engine: str, scanned: int) -> Decimal | None:
    """What Athena charges, in USD, for a query that scanned `scanned` bytes; None for the embedded engine (nothing
    is charged)."""
    if engine != "athena":
        return None
    return Decimal(max(scanned, ATHENA_MIN_BYTES)) / Decimal(1000**4) * ATHENA_USD_PER_TB
