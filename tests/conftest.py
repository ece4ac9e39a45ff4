"""Shared fixtures: one embedded AWS (moto server + Logs Insights double) per session, reset for each test."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from .botocore_data import share_botocore_data

# Never let a test reach a real account, whatever the developer's shell has.
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
    os.environ.pop(_name, None)

# Each run of the product makes its own boto3 Session: parse botocore's data files once per process, not per run.
share_botocore_data()

# Hypothesis depth, chosen by HYPOTHESIS_PROFILE. `ci` (what .ci/run sets; also the default wherever Hypothesis
# detects CI) is Hypothesis' own CI profile: derandomized, no example database, and every property test at its full
# depth. `dev` (the default elsewhere) runs a tenth of the examples. A test that needs more than the profile's
# max_examples asks tests.depth.examples(n) for it: n under `ci`, n/10 under `dev`.
settings.register_profile("ci", settings.get_profile("ci"))
settings.register_profile("dev", settings.get_profile("default"), max_examples=10)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if settings.get_current_profile_name() == "ci" else "dev")
)


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
