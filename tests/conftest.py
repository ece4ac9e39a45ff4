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


_DOUBLE_SETTINGS = (
    "row_limit",
    "max_limit",
    "field_limit",
    "polls_until_running",
    "polls_until_complete",
    "concurrency_cap",
    "keep_null_groups",
)


@pytest.fixture
def aws(_embedded):
    """A clean account: moto reset, no queries remembered, and the double's settings as they were."""
    _embedded.reset()
    double = _embedded.insights
    double.reset()
    _embedded.cost_explorer.reset()
    saved = {name: getattr(double, name) for name in _DOUBLE_SETTINGS}
    yield _embedded
    for name, value in saved.items():
        setattr(double, name, value)
