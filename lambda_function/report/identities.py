"""Friendly names for identity ARNs: what a person would call the caller."""

from __future__ import annotations

import re

_IAM = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d*):(?P<kind>user|role)/(?:.*/)?(?P<name>[^/]+)$")
_STS = re.compile(r"^arn:aws[a-z-]*:sts::(?P<account>\d*):assumed-role/(?P<role>[^/]+)/(?P<session>.+)$")
_SSO_ROLE = re.compile(r"^AWSReservedSSO_(?P<permission_set>.+)_[0-9a-f]{8,}$")


def friendly_identity(arn: str) -> str:
    """`alice` for an IAM user, `alice@example.com (DataScience)` for an SSO session, `Role/session` else."""
    match = _IAM.match(arn)
    if match:
        return match["name"] if match["kind"] == "user" else f"role {match['name']}"
    match = _STS.match(arn)
    if match:
        role, session = match["role"], match["session"]
        sso = _SSO_ROLE.match(role)
        if sso:
            return f"{session} ({sso['permission_set']})"
        return f"{role}/{session}"
    return arn
