"""Faults injected at the HTTP boundary, through botocore's `before-send` hook.

botocore emits `before-send.<service>.<Operation>` for every attempt, with the signed wire request, just before
it goes out; a handler that returns a response is taken as the service's answer, and one that raises is an error
of the connection. So a rule here can answer instead of AWS (a throttle, a 500, AccessDenied), let the request
reach the embedded AWS and then lose the answer (the service acted, the caller cannot know), or kill the process
at that instant (a BaseException nothing in the product catches, as a Lambda timeout would).

    faults = Faults()
    faults.add("SendRawEmail", faults.answer_lost())          # SES sends it, the caller sees a 500
    aws = AwsClients("us-east-1", session=faults.session())   # the product's clients, with the hook installed
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

Action = Callable[[AWSPreparedRequest, str], Any]


class ProcessKilled(BaseException):  # noqa: N818 - it is what it models
    """The Lambda sandbox is gone (timeout, out of memory): no except/finally of the product's should see this as
    an error to handle. Tests catch it where the platform would."""


class _Body:
    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_: Any):
        yield self._data


def _error_body(service: str, code: str, message: str) -> tuple[bytes, dict[str, str]]:
    """An error in the protocol the service speaks, so that botocore parses it into ClientError as it would."""
    if service == "s3":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        return body.encode(), {"Content-Type": "application/xml"}
    if service in ("ses", "sts", "iam"):  # query protocol
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>fault</RequestId></ErrorResponse>"
        )
        return body.encode(), {"Content-Type": "text/xml"}
    return json.dumps({"__type": code, "message": message}).encode(), {
        "Content-Type": "application/x-amz-json-1.1",
        "x-amzn-ErrorType": code,
    }


@dataclass
class Rule:
    operation: str
    action: Action
    times: int  # how many attempts it applies to (-1: every one)
    when: Callable[[AWSPreparedRequest], bool] | None = None
    skip: int = 0  # matching attempts let through before the rule applies
    hits: int = 0


@dataclass
class Faults:
    """Rules matched in order, per attempt; `calls` records every attempt's operation name."""

    rules: list[Rule] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def session(self) -> boto3.session.Session:
        session = boto3.session.Session()
        session.events.register("before-send", self._before_send)
        return session

    def add(
        self,
        operation: str,
        action: Action,
        times: int = 1,
        when: Callable[[AWSPreparedRequest], bool] | None = None,
        skip: int = 0,
    ) -> Rule:
        rule = Rule(operation, action, times, when, skip)
        self.rules.append(rule)
        return rule

    def count(self, operation: str) -> int:
        return self.calls.count(operation)

    def _before_send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> Any:
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            self.calls.append(operation)
            rule = next(
                (
                    r
                    for r in self.rules
                    if r.operation == operation and r.times != 0 and (r.when is None or r.when(request))
                ),
                None,
            )
            if rule is None:
                return None
            if rule.skip > 0:
                rule.skip -= 1
                return None
            rule.hits += 1
            if rule.times > 0:
                rule.times -= 1
        return rule.action(request, "s3" if service == "s3" else "ses" if service == "ses" else service)

    # -- actions ---------------------------------------------------------------------------------------------------
    @staticmethod
    def error(status: int, code: str, message: str = "injected fault") -> Action:
        """AWS answers with this error; the request never reached the service."""

        def action(request: AWSPreparedRequest, service: str) -> AWSResponse:
            body, headers = _error_body(service, code, message)
            return AWSResponse(request.url, status, headers, _Body(body))

        return action

    @staticmethod
    def answer(respond: Callable[[AWSPreparedRequest], dict[str, Any]]) -> Action:
        """AWS answers 200 with the JSON `respond` makes of the request (for JSON-protocol services, e.g. the
        Price List, which moto does not implement)."""

        def action(request: AWSPreparedRequest, service: str) -> AWSResponse:
            body = json.dumps(respond(request)).encode()
            return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, _Body(body))

        return action

    @staticmethod
    def answer_lost(status: int = 500, code: str = "InternalFailure") -> Action:
        """The service gets the request and acts on it; its answer is lost and the caller sees `status`."""

        def action(request: AWSPreparedRequest, service: str) -> AWSResponse:
            URLLib3Session().send(request)
            body, headers = _error_body(service, code, "the answer was lost on the way back")
            return AWSResponse(request.url, status, headers, _Body(body))

        return action

    @staticmethod
    def read_timeout_after_send() -> Action:
        """The service acts; the caller's read times out."""

        def action(request: AWSPreparedRequest, service: str) -> None:
            URLLib3Session().send(request)
            raise ReadTimeoutError(endpoint_url=request.url)

        return action

    @staticmethod
    def connection_closed_after_send() -> Action:
        def action(request: AWSPreparedRequest, service: str) -> None:
            URLLib3Session().send(request)
            raise ConnectionClosedError(endpoint_url=request.url)

        return action

    @staticmethod
    def connection_refused() -> Action:
        """Nothing reached the service (no connection)."""

        def action(request: AWSPreparedRequest, service: str) -> None:
            raise EndpointConnectionError(endpoint_url=request.url)

        return action

    @staticmethod
    def kill_before_send() -> Action:
        def action(request: AWSPreparedRequest, service: str) -> None:
            raise ProcessKilled(f"killed before {request.url} was sent")

        return action

    @staticmethod
    def kill_after_send() -> Action:
        def action(request: AWSPreparedRequest, service: str) -> None:
            URLLib3Session().send(request)
            raise ProcessKilled(f"killed after {request.url} was sent")

        return action
