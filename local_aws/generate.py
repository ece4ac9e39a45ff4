"""Realistic, deterministic Bedrock model-invocation log records (FACTS §1) for the demo, tests and benchmarks.

Same seed, same records: every random choice comes from one `random.Random(seed)`, never the clock.
"""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

ACCOUNT = "123456789012"


@dataclass(frozen=True)
class ModelProfile:
    """How a model is used: its id as logged, how heavy its calls are, and what it supports."""

    model_id: str
    weight: float
    input_tokens: tuple[int, int]
    output_tokens: tuple[int, int]  # (0, 0) for embeddings
    cache: str = ""  # "anthropic": reads and writes; "nova": reads only
    inference_regions: tuple[str, ...] = ()  # where a cross-region profile routes calls
    long_context_rate: float = 0.0  # share of calls with more than 200K input tokens (1M-context models)


DEFAULT_MODELS: tuple[ModelProfile, ...] = (
    ModelProfile(
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        1.0,
        (800, 12_000),
        (100, 2_000),
        "anthropic",
        ("us-east-1", "us-east-2", "us-west-2"),
        long_context_rate=0.01,
    ),
    ModelProfile(
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        0.8,
        (800, 12_000),
        (100, 2_000),
        "anthropic",
        ("us-east-2", "eu-west-1", "ap-northeast-1"),
    ),
    ModelProfile(
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        1.5,
        (300, 6_000),
        (50, 1_200),
        "anthropic",
        ("us-east-2", "us-west-2"),
    ),
    ModelProfile(
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        0.8,
        (300, 5_000),
        (50, 900),
        "anthropic",
        ("us-east-1", "us-west-2"),
    ),
    ModelProfile("anthropic.claude-3-haiku-20240307-v1:0", 1.2, (200, 4_000), (30, 600)),
    ModelProfile("amazon.nova-lite-v1:0", 1.5, (200, 4_000), (30, 800), "nova"),
    ModelProfile("amazon.nova-micro-v1:0", 1.2, (100, 2_000), (20, 400), "nova"),
    ModelProfile("amazon.nova-pro-v1:0", 0.6, (500, 8_000), (100, 1_500), "nova"),
    ModelProfile("amazon.titan-embed-text-v2:0", 1.5, (20, 800), (0, 0)),
    ModelProfile("cohere.embed-english-v3", 0.7, (20, 600), (0, 0)),
    # not in any price table: must come out unpriced, never $0
    ModelProfile("acme.unknown-model-v1:0", 0.2, (100, 2_000), (20, 400)),
)


def default_identities(account: str = ACCOUNT) -> tuple[tuple[str, float], ...]:
    """IAM users and assumed-role sessions, with skewed weights (a few heavy users)."""
    return (
        (f"arn:aws:iam::{account}:user/alice", 6.0),
        (f"arn:aws:iam::{account}:user/bob", 3.0),
        (f"arn:aws:iam::{account}:user/carol", 1.0),
        (f"arn:aws:iam::{account}:user/dave", 0.5),
        (f"arn:aws:sts::{account}:assumed-role/support-chatbot-lambda-role/support-chatbot", 8.0),
        (f"arn:aws:sts::{account}:assumed-role/AWSReservedSSO_DataScience_4f2a9c1b7e3d5a60/erin@example.com", 2.5),
        (f"arn:aws:sts::{account}:assumed-role/AWSReservedSSO_DataScience_4f2a9c1b7e3d5a60/frank@example.com", 1.5),
        (f"arn:aws:sts::{account}:assumed-role/AWSReservedSSO_Admin_0a1b2c3d4e5f6a7b/grace@example.com", 0.3),
        (f"arn:aws:sts::{account}:assumed-role/github-actions-ci/build-8812", 1.0),
        (f"arn:aws:sts::{account}:assumed-role/rag-indexer-ecs-task-role/3f9c2e7a1b", 4.0),
        (f"arn:aws:sts::{account}:assumed-role/BedrockAgentRole/agent-session-7d1e", 1.2),
    )


# Busier in working hours (UTC): relative weight of each hour of the day.
HOURLY_SHAPE = (1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9, 8, 9, 10, 10, 9, 7, 5, 4, 3, 2, 2, 1)
OPERATIONS = ("Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream")
PROMPTS = (
    "Summarise this support ticket for the on-call engineer.",
    "What immunizations does patient PAT001 need?",
    "Translate the release notes into German.",
    "Write a SQL query that returns last week's top customers.",
    "Classify the sentiment of this review.",
)


def _timestamps(rng: random.Random, start: datetime, end: datetime, count: int) -> list[datetime]:
    """Whole-second instants in [start, end), weighted by the hour of day."""
    seconds = int((end - start).total_seconds())
    hours = max(1, seconds // 3600)
    weights = [HOURLY_SHAPE[(start + timedelta(hours=h)).astimezone(UTC).hour] for h in range(hours)]
    chosen = rng.choices(range(hours), weights=weights, k=count)
    out = []
    for hour in chosen:
        lo = hour * 3600
        hi = min(seconds, lo + 3600) - 1
        out.append(start + timedelta(seconds=rng.randint(lo, max(lo, hi))))
    return sorted(out)


def _body(rng: random.Random, large: bool) -> dict[str, Any]:
    messages = [{"role": "user", "content": [{"text": rng.choice(PROMPTS)}]}]
    if large:
        # A long agent conversation with tools: 300 turns of 4+ leaves flatten to over 1,000 fields,
        # past Logs Insights' 200-field extraction limit (FACTS §2).
        messages = [
            {"role": "user" if n % 2 == 0 else "assistant", "content": [{"text": f"turn {n}: {rng.choice(PROMPTS)}"}]}
            for n in range(300)
        ]
        tools = [
            {
                "toolSpec": {
                    "name": f"tool_{n}",
                    "description": "Look something up",
                    "inputSchema": {"json": {"type": "object"}},
                }
            }
            for n in range(40)
        ]
        return {"messages": messages, "toolConfig": {"tools": tools}, "inferenceConfig": {"maxTokens": 2048}}
    return {"messages": messages, "inferenceConfig": {"maxTokens": 1024, "temperature": 0.5}}


def _record(
    rng: random.Random,
    when: datetime,
    identity: str,
    model: ModelProfile,
    *,
    account: str,
    region: str,
    failure_rate: float,
    large_record_rate: float,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accountId": account,
        "identity": {"arn": identity},
        "region": region,
        "requestId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "operation": rng.choice(OPERATIONS[:2] if model.output_tokens != (0, 0) else ("InvokeModel",)),
        "modelId": model.model_id,
    }
    if model.inference_regions:
        record["inferenceRegion"] = rng.choice(model.inference_regions)
    if rng.random() < failure_rate:
        # A failed call has no input and no output at all (FACTS §1).
        record["errorCode"] = "ThrottlingException" if rng.random() < 0.85 else "ValidationException"
        return record
    if record["operation"].startswith("Converse") and rng.random() < 0.2:
        record["requestMetadata"] = {"team": rng.choice(("search", "support", "data")), "env": "prod"}
    large = rng.random() < large_record_rate
    tokens_in = rng.randint(*model.input_tokens) * (20 if large else 1)
    if model.long_context_rate and rng.random() < model.long_context_rate:
        tokens_in = rng.randint(200_001, 600_000)  # billed at the long-context tier where the model has one
    cache_read = cache_write = 0
    if model.cache and rng.random() < 0.35:
        cache_read = rng.randint(1_000, 20_000)
        if model.cache == "anthropic" and rng.random() < 0.4:
            cache_write = rng.randint(500, 8_000)
    # Bodies come BEFORE the token counts, as in real records.
    record["input"] = {
        "inputContentType": "application/json",
        "inputBodyJson": _body(rng, large),
        "inputTokenCount": tokens_in,
        "cacheReadInputTokenCount": cache_read,
        "cacheWriteInputTokenCount": cache_write,
    }
    if model.output_tokens != (0, 0):
        tokens_out = rng.randint(*model.output_tokens)
        record["output"] = {
            "outputContentType": "application/json",
            "outputBodyJson": {
                "output": {"message": {"role": "assistant", "content": [{"text": "Here is the answer."}]}},
                "stopReason": "end_turn",
                "usage": _usage(rng, tokens_in, tokens_out, cache_read, cache_write),
            },
            "outputTokenCount": tokens_out,
        }
    else:
        # embeddings: no output tokens
        record["output"] = {"outputContentType": "application/json", "outputBodyJson": {"embedding": [0.1, 0.2]}}
    return record


def _usage(rng: random.Random, tokens_in: int, tokens_out: int, cache_read: int, cache_write: int) -> dict[str, Any]:
    """Converse's usage block; cache writes with their TTL split (`cacheDetails`), part of them for an hour."""
    usage: dict[str, Any] = {"inputTokens": tokens_in, "outputTokens": tokens_out}
    if cache_read:
        usage["cacheReadInputTokens"] = cache_read
    if cache_write:
        usage["cacheWriteInputTokens"] = cache_write
        one_hour = rng.choice((0, 0, cache_write // 3, cache_write))
        details = [{"ttl": "5m", "inputTokens": cache_write - one_hour}, {"ttl": "1h", "inputTokens": one_hour}]
        usage["cacheDetails"] = [d for d in details if d["inputTokens"]]
    return usage


def one_hour_cache_writes(record: Mapping[str, Any]) -> int:
    """The 1-hour cache writes a record's logged body states (Converse cacheDetails or Anthropic cache_creation)."""
    usage = record.get("output", {}).get("outputBodyJson", {}).get("usage", {})
    details = sum(d.get("inputTokens", 0) for d in usage.get("cacheDetails", []) if d.get("ttl") == "1h")
    return details or usage.get("cache_creation", {}).get("ephemeral_1h_input_tokens", 0)


def iter_records(
    start: datetime,
    end: datetime,
    *,
    count: int,
    seed: int = 7,
    account_id: str = ACCOUNT,
    region: str = "us-east-1",
    identities: Sequence[tuple[str, float]] | None = None,
    models: Sequence[ModelProfile] = DEFAULT_MODELS,
    failure_rate: float = 0.03,
    large_record_rate: float = 0.0,
) -> Iterator[dict[str, Any]]:
    """Records one by one in time order (for a million, without holding them all)."""
    rng = random.Random(seed)
    people = list(identities or default_identities(account_id))
    who = rng.choices([p for p, _ in people], weights=[w for _, w in people], k=count)
    what = rng.choices(list(models), weights=[m.weight for m in models], k=count)
    for when, identity, model in zip(_timestamps(rng, start, end, count), who, what, strict=True):
        yield _record(
            rng,
            when,
            identity,
            model,
            account=account_id,
            region=region,
            failure_rate=failure_rate,
            large_record_rate=large_record_rate,
        )


def generate_records(start: datetime, end: datetime, *, count: int, **options: Any) -> list[dict[str, Any]]:
    return list(iter_records(start, end, count=count, **options))


def permission_check_line() -> str:
    """The one-off non-JSON line a log group gets when Bedrock logging is set up (FACTS §1, unverified)."""
    return "Bedrock model invocation logging permission check"


def expected_totals(
    records: Iterable[dict[str, Any]], long_context_above: Mapping[str, int] | None = None
) -> pd.DataFrame:
    """Ground truth straight from the records: one row per account, identity ARN, model id and region.

    `long_context_above` maps a model id as logged to the input threshold of its long-context tier; calls above it
    are counted in `long_context_invocations`."""
    thresholds = long_context_above or {}
    rows = []
    for r in records:
        inp = r.get("input", {})
        all_in = (
            inp.get("inputTokenCount", 0)
            + inp.get("cacheReadInputTokenCount", 0)
            + inp.get("cacheWriteInputTokenCount", 0)
        )
        rows.append(
            {
                "account_id": r["accountId"],
                "identity_arn": r["identity"]["arn"],
                "model_id": r["modelId"],
                "region": r["region"],
                "input_tokens": inp.get("inputTokenCount", 0),
                "output_tokens": r.get("output", {}).get("outputTokenCount", 0),
                "cache_read_tokens": inp.get("cacheReadInputTokenCount", 0),
                "cache_write_tokens": inp.get("cacheWriteInputTokenCount", 0),
                "cache_write_1h_tokens": one_hour_cache_writes(r),
                "invocations": 1,
                "failed_invocations": int("errorCode" in r),
                "long_context_invocations": int(all_in > thresholds.get(r["modelId"], all_in)),
            }
        )
    keys = ["account_id", "identity_arn", "model_id", "region"]
    if not rows:
        return pd.DataFrame(columns=keys)
    return pd.DataFrame(rows).groupby(keys, as_index=False).sum()


def to_log_events(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """CloudWatch events: one compact JSON object each, in time order."""
    events = []
    for r in records:
        stamp = datetime.strptime(r["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        events.append({"timestamp": int(stamp.timestamp() * 1000), "message": json.dumps(r, separators=(",", ":"))})
    events.sort(key=lambda e: e["timestamp"])
    return events


MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_000_000  # PutLogEvents: 1,048,576 bytes, counting 26 bytes of overhead per event


def put_records(
    logs: Any, log_group: str, records: Iterable[dict[str, Any]], *, stream: str = "bedrock-invocations"
) -> int:
    """Create the group and stream if needed and write the records in PutLogEvents-sized batches."""
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=log_group)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
    events = to_log_events(records)
    batch: list[dict[str, Any]] = []
    size = 0
    for event in events:
        event_size = len(event["message"].encode("utf-8")) + 26
        if batch and (len(batch) >= MAX_BATCH_EVENTS or size + event_size > MAX_BATCH_BYTES):
            logs.put_log_events(logGroupName=log_group, logStreamName=stream, logEvents=batch)
            batch, size = [], 0
        batch.append(event)
        size += event_size
    if batch:
        logs.put_log_events(logGroupName=log_group, logStreamName=stream, logEvents=batch)
    return len(events)


def records_for_groups(
    start: datetime,
    end: datetime,
    *,
    groups: int,
    calls_per_group: int = 2,
    seed: int = 11,
    account_id: str = ACCOUNT,
    region: str = "us-east-1",
    tenants: int = 0,
) -> Iterator[dict[str, Any]]:
    """Exactly `groups` (identity, model) groups, each called `calls_per_group` times at random instants of
    [start, end): the shape of a day that stresses the report's row limits (benchmarks). No call goes above a
    long-context threshold, so each (identity, model) pair is exactly one query row. Not in time order.
    With `tenants`, the groups are (identity, model, tenant) instead: `groups // tenants` (identity, model) pairs,
    each called by `tenants` tenants (requestMetadata `tenant`), the multi-tenant shape of one attribution key."""
    models = [replace(m, long_context_rate=0.0) for m in DEFAULT_MODELS]
    rng = random.Random(seed)
    seconds = int((end - start).total_seconds())
    for n in range(groups):
        pair = n // tenants if tenants else n
        identity = f"arn:aws:sts::{account_id}:assumed-role/tenant-{pair // len(models):06d}/session-{pair % 7}"
        model = models[pair % len(models)]
        for _ in range(calls_per_group):
            when = start + timedelta(seconds=rng.randrange(seconds))
            record = _record(
                rng, when, identity, model, account=account_id, region=region, failure_rate=0.03, large_record_rate=0
            )
            if tenants:
                record["requestMetadata"] = {"tenant": f"t{n % tenants:04d}"}
            yield record
