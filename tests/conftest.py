"""Shared fixtures: one embedded AWS (moto server + Logs Insights double) per session, reset for each test."""

from __future__ import annotations

import os

import pytest

# Never let a test reach a real account, whatever the developer's shell has.
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def _embedded():
    from local_aws.embedded import embedded_aws  # imported here so pure tests run without moto's server

    with embedded_aws() as aws:
        yield aws


@pytest.fixture
def aws(_embedded):
    _embedded.reset()
    _embedded.insights.reset()
    yield _embedded
