"""boto3 clients whose retries we own: each attempt started only while the run has time for it.

botocore's own retries are off. Its standard mode would retry a throttled StartQuery 8 times with backoff of up to
20 s each (past Lambda's hard stop), and it retries SendEmail after a 500 or a lost connection, when SES may
already have sent the message. Here every call of every client goes through `RetryPolicy.call`:

- transient errors (throttling, 5xx, a connection that never reached the service) are retried with jittered
  backoff, never with a sleep that would end after the deadline;
- idempotent reads (`IDEMPOTENT_READS`: asking again changes nothing) are retried for as long as the run has time
  for them (until `reads_until`), however many attempts that takes, and at least as often as a write; every other
  call at most `attempts` times;
- operations that are not safe to repeat (`UNSAFE_AFTER_SEND`: SES's SendEmail) are retried only after errors that
  prove the service did not act on the request: throttling and refused connections, never a 5xx or a timeout;
- no attempt starts after the deadline: the run ends with DeadlineExceeded instead of being killed mid-call. An
  attempt started before it may take `ATTEMPT_SECONDS` (connect and read timeouts), so the run's deadline for calls
  lies that long before its end. A stage that must end sooner (the queries, which still have to be stopped) uses
  a client `within` its own deadline.
"""

from __future__ import annotations

import copy
import functools
import gzip
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import boto3
import botocore.session
import msgspec
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from lambda_function.errors import DeadlineExceeded

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 20
# An attempt started before the deadline may take this long (connect + read) before it gives up.
ATTEMPT_SECONDS = CONNECT_TIMEOUT + READ_TIMEOUT

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
    }
)
# Answers after which the service may have acted: retried only where repeating the call is harmless.
AMBIGUOUS_ERRORS = (ReadTimeoutError, ConnectionClosedError)
# The request never reached the service: always safe to retry.
UNSENT_ERRORS = (EndpointConnectionError, ConnectTimeoutError)
UNSAFE_AFTER_SEND = frozenset({"SendRawEmail", "SendEmail"})
# Calls that change nothing, however often they are made: retried until the run's time for reads is up, not a fixed
# number of times (five throttled polls in a row must not end a run that has minutes left).
IDEMPOTENT_READS = frozenset(
    {
        # CloudWatch Logs
        "GetQueryResults",
        "DescribeLogGroups",
        "DescribeQueries",
        # S3
        "GetObject",
        "HeadObject",
        "HeadBucket",
        "ListObjectsV2",
        "ListObjects",
        # Cost Explorer
        "GetCostAndUsage",
        "GetDimensionValues",
        # Athena (the bill per identity; GetQueryResults is listed above: one name for both services)
        "GetQueryExecution",
        # Bedrock
        "GetInferenceProfile",
        "ListTagsForResource",
        # IAM and STS
        "ListRoleTags",
        "ListUserTags",
        "GetRole",
        "GetUser",
        "GetCallerIdentity",
        # the Price List
        "GetProducts",
        "DescribeServices",
        "GetAttributeValues",
    }
)
# Throttling the caller backs off from itself: InsightsRunner waits out the account's concurrent-query limit with
# longer, deadline-bounded delays; retrying here too would multiply its attempts.
CALLER_BACKS_OFF = frozenset({"StartQuery"})


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def http_status(err: ClientError) -> int:
    return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_ambiguous(err: BaseException) -> bool:
    """True when the service may have acted on the request although the caller got an error."""
    if isinstance(err, AMBIGUOUS_ERRORS):
        return True
    return isinstance(err, ClientError) and http_status(err) >= 500 and error_code(err) not in THROTTLING_CODES


def is_transient(err: BaseException) -> bool:
    """True for the errors a call is retried after (where repeating it is safe): throttling, 5xx, lost or refused
    connections. An error of this kind that reaches the caller of a read means the deadline stopped its retries."""
    if isinstance(err, (*UNSENT_ERRORS, *AMBIGUOUS_ERRORS)):
        return True
    return isinstance(err, ClientError) and (error_code(err) in THROTTLING_CODES or http_status(err) >= 500)


class RetryPolicy:
    """Attempts, backoff and the deadline for every AWS call of a run. Clock and sleep are injected.

    deadline: no attempt starts after it. reads_until: idempotent reads are retried while the retry would start
    before it (default: the deadline); without any deadline they get `attempts` like every other call."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float | None = None,
        reads_until: float | None = None,
        attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
    ):
        self.clock = clock
        self.sleep = sleep
        self.deadline = deadline
        self.reads_until = reads_until
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay

    def time_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - self.clock()

    def within(self, deadline: float) -> RetryPolicy:
        """This policy for a stage that must end by `deadline`: no attempt, and no retry of a read, after it."""
        narrowed = copy.copy(self)
        narrowed.deadline = deadline if self.deadline is None else min(self.deadline, deadline)
        reads_end = self._reads_end()
        narrowed.reads_until = deadline if reads_end is None else min(reads_end, deadline)
        return narrowed

    def _reads_end(self) -> float | None:
        """Until when reads are retried: None when the run has no deadline (then a read gets `attempts`)."""
        ends = [end for end in (self.deadline, self.reads_until) if end is not None]
        return min(ends) if ends else None

    def _retryable(self, operation: str, err: BaseException) -> bool:
        if isinstance(err, UNSENT_ERRORS):
            return True
        if isinstance(err, ClientError) and error_code(err) in THROTTLING_CODES:
            return operation not in CALLER_BACKS_OFF
        return is_ambiguous(err) and operation not in UNSAFE_AFTER_SEND

    def _may_retry(self, operation: str, attempt: int, delay: float) -> bool:
        """Whether to sleep `delay` and make attempt number `attempt + 1`."""
        if delay >= self.time_left():
            return False  # the retry could not start before the deadline
        if attempt < self.attempts:
            return True
        # Reads go on as long as the run has time for them; without a deadline, they stop where writes do.
        reads_end = self._reads_end()
        return operation in IDEMPOTENT_READS and reads_end is not None and self.clock() + delay < reads_end

    def call(self, method: Callable[..., Any], operation: str, /, **params: Any) -> Any:
        attempt = 0
        while True:
            attempt += 1
            if self.time_left() <= 0:
                raise DeadlineExceeded(f"{operation} was not started: the run reached its deadline")
            try:
                return method(**params)
            except (ClientError, *AMBIGUOUS_ERRORS, *UNSENT_ERRORS) as err:
                if not self._retryable(operation, err):
                    raise
                delay = min(self.max_delay, self.base_delay * 2 ** min(attempt - 1, 16)) * random.uniform(0.5, 1.0)
                if not self._may_retry(operation, attempt, delay):
                    raise
                log.warning("%s failed (%s); attempt %d in %.1fs", operation, err, attempt + 1, delay)
                self.sleep(delay)


class GuardedClient:
    """A boto3 client whose API methods go through the run's RetryPolicy; everything else passes through."""

    def __init__(self, client: Any, policy: RetryPolicy):
        self._client = client
        self._policy = policy
        self._operations: dict[str, str] = client.meta.method_to_api_mapping

    def within(self, deadline: float) -> GuardedClient:
        """The same client, for calls that must not start (nor be retried) after `deadline`."""
        return GuardedClient(self._client, self._policy.within(deadline))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        operation = self._operations.get(name)
        if operation is None:
            return attribute
        policy = self._policy

        def call(**params: Any) -> Any:
            return policy.call(attribute, operation, **params)

        return call


class ModelFiles:
    """botocore's data files (service models, endpoint rules) read with msgspec: botocore's own reader builds an
    OrderedDict per JSON object, 0.10 s against 0.012 s for the files a report's clients read (S3's model and rules
    alone are 2.3 MB), at every cold start. Same files, same search paths (`AWS_DATA_PATH`), same `.json` /
    `.json.gz` order; only the decoding differs (plain dicts keep their order)."""

    _OPENERS: dict[str, Callable[..., Any]] = {".json": open, ".json.gz": gzip.open}

    def exists(self, file_path: str) -> bool:
        return any(os.path.isfile(file_path + ext) for ext in self._OPENERS)

    def load_file(self, file_path: str) -> Any:
        for ext, opener in self._OPENERS.items():
            if os.path.isfile(file_path + ext):
                with opener(file_path + ext, "rb") as data:
                    return msgspec.json.decode(data.read())
        return None


class KnownServices(Sequence[str]):
    """The services botocore's loader knows for a model type, as its `list_available_services` lists them, but asked
    only whether one service is known (all botocore asks while it makes a client) by looking in that service's own
    folders: the full list means listing every service's folder in every search path (about 420 in botocore's data
    alone, for two model types a client: 0.015 s at each cold start). The list itself is made only if asked for."""

    def __init__(self, loader: ModelLoader, type_name: str) -> None:
        self._loader, self._type_name = loader, type_name

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not name or os.sep in name or name in (os.curdir, os.pardir):
            return name in self._names
        for folder in self._loader.search_paths:
            service = os.path.join(folder, name)
            if os.path.isdir(folder) and os.path.isdir(service):
                for version in os.listdir(service):
                    if self._loader.file_loader.exists(os.path.join(service, version, self._type_name)):
                        return True
        return False

    @functools.cached_property
    def _names(self) -> list[str]:
        return self._loader.all_services(self._type_name)

    def __getitem__(self, index: Any) -> Any:
        return self._names[index]

    def __len__(self) -> int:
        return len(self._names)


class ModelLoader(botocore.loaders.Loader):
    """botocore's loader (the same search paths, cache and extras), reading its files with `ModelFiles` and asking
    whether a service is known through `KnownServices`."""

    def list_available_services(self, type_name: str) -> KnownServices:  # type: ignore[override]
        return KnownServices(self, type_name)

    def all_services(self, type_name: str) -> list[str]:
        return cast(list[str], super().list_available_services(type_name))


def new_session() -> boto3.session.Session:
    """A boto3 session whose botocore loads its data files through `ModelLoader` (searching where botocore's own
    loader would: AWS_DATA_PATH, ~/.aws/models, botocore's data)."""
    core = botocore.session.get_session()
    paths = list(core.get_component("data_loader").search_paths)  # botocore's loader's, AWS_DATA_PATH first
    loader = ModelLoader(paths, file_loader=ModelFiles(), include_default_search_paths=False)
    core.register_component("data_loader", loader)
    return boto3.session.Session(botocore_session=core)


class AwsClients:
    """Clients made once per service and region, all bound by one RetryPolicy (see `bound`)."""

    _config = BotoConfig(
        retries={"total_max_attempts": 1},  # our RetryPolicy owns retries
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        user_agent_extra="bedrock-usage-report",
    )

    def __init__(self, default_region: str, session: boto3.session.Session | None = None):
        self._session = session or new_session()
        self._default_region = default_region
        self._clients: dict[tuple[str, str], GuardedClient] = {}
        self._account = ""
        self.policy = RetryPolicy()

    def bound(
        self,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        deadline: float | None,
        reads_until: float | None = None,
    ) -> None:
        """From now on every call starts only before `deadline` (on `clock`) and backs off with `sleep`; reads are
        retried until `reads_until` (default: the deadline)."""
        self.policy.clock, self.policy.sleep, self.policy.deadline = clock, sleep, deadline
        self.policy.reads_until = reads_until

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self._default_region)
        if key not in self._clients:
            config = self._config
            if service == "s3":
                # SigV4 presigned links (X-Amz-Expires up to 7 days); botocore may otherwise presign with SigV2.
                config = config.merge(BotoConfig(signature_version="s3v4"))
            raw = self._session.client(service, region_name=key[1], config=config)
            self._clients[key] = GuardedClient(raw, self.policy)
        return self._clients[key]

    def logs(self, region: str) -> Any:
        return self.client("logs", region)

    def account_id(self) -> str:
        """The account the credentials belong to (STS GetCallerIdentity, which needs no permission), asked once a
        run; an error is the caller's to handle."""
        if not self._account:
            self._account = str(self.client("sts").get_caller_identity()["Account"])
        return self._account

    def credentials(self) -> Any:
        """The credentials the clients sign with (None when there are none)."""
        return self._session.get_credentials()
