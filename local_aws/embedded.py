"""An embedded AWS for the demo, the tests and the benchmarks: moto's server on loopback, boto3 pointed at it
through AWS_ENDPOINT_URL, and Logs Insights answered by our test double (moto's own ignores stats/filter/parse).
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer
from moto.ses.models import ses_backends

from .cost_explorer import CostExplorerDouble
from .insights import InsightsDouble

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass
class EmbeddedAws:
    endpoint: str
    region: str
    insights: InsightsDouble
    cost_explorer: CostExplorerDouble
    account_id: str = DEFAULT_ACCOUNT_ID

    def client(self, service: str, region: str | None = None) -> Any:
        return boto3.client(service, region_name=region or self.region, endpoint_url=self.endpoint)

    def sent_emails(self, region: str | None = None) -> list[Any]:
        """What SES 'sent': moto keeps each raw message with its source and destinations."""
        return list(ses_backends[self.account_id][region or self.region].sent_messages)

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def embedded_aws(region: str = "us-east-1", insights: InsightsDouble | None = None) -> Iterator[EmbeddedAws]:
    """Start moto on 127.0.0.1 (a free port), set the AWS_* variables for boto3, and stop it all afterwards."""
    double = insights or InsightsDouble()
    costs = CostExplorerDouble()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        env = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
        with environment(env), double.installed(), costs.installed():
            aws = EmbeddedAws(endpoint, region, double, costs)
            # moto keeps its state in this process's globals: a new embedded AWS starts empty
            aws.reset()
            yield aws
    finally:
        server.stop()
