"""How many examples a property test runs: its depth in CI, scaled by the active Hypothesis profile (tests/conftest.py).

An explicit @settings(max_examples=N) overrides any profile, so a test that runs more than the profile's default
writes @settings(max_examples=examples(N)): exactly N under `ci`, N/10 under `dev`.
"""

from __future__ import annotations

from hypothesis import settings


def examples(ci: int) -> int:
    """`ci` examples under the ci profile; the active profile's share of them under any other."""
    active = settings.default
    assert active is not None
    return max(1, ci * active.max_examples // settings.get_profile("ci").max_examples)
