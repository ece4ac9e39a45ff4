"""The email as a person sees it: the HTML laid out by Chromium, with the key figures in the rendered text."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from lambda_function.report.rows import money
from local_aws.preview import chromium_path, render

from .test_end_to_end import UNKNOWN_MODEL, account, records, report  # noqa: F401  (fixtures)

needs_chromium = os.environ.get("REQUIRE_CHROMIUM") != "1" and chromium_path() is None


@pytest.mark.skipif(needs_chromium, reason="Chromium is not installed (CI installs it and sets REQUIRE_CHROMIUM=1)")
def test_the_rendered_email_shows_the_key_figures(account, tmp_path):  # noqa: F811
    run = report({"send_email": False})
    text = render(run.html, tmp_path / "email.png")
    response = run.response
    assert money(Decimal(response["total_cost_usd"])) in text
    assert f"{response['invocations']:,}" in text
    assert f"{response['failed_invocations']:,} failed" in text
    assert UNKNOWN_MODEL in text and "not included in the total" in text
    assert "Month to date" in text
    assert "alice" in text  # friendly identity names, not bare ARNs
    assert (tmp_path / "email.png").stat().st_size > 10_000
