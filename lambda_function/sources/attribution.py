"""Cost by team, project or tenant: each usage row's value for each ATTRIBUTION_KEYS key, from the request's metadata,
else its application inference profile's tag, else its caller's IAM tag. Tags are read once per run; never fatal."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.aws import AwsClients, error_code
from lambda_function.columns import object_column
from lambda_function.errors import ConfigError, DeadlineExceeded

log = logging.getLogger(__name__)

UNATTRIBUTED = "unattributed"  # how a row with no value for a key is shown (its column holds "")
METADATA_PREFIX = "meta:"  # input column `meta:<key>`: the record's requestMetadata value, "" when absent

_PARTITION = r"arn:aws[a-z-]*"  # aws, aws-cn, aws-us-gov (and the isolated partitions)
# An assumed-role session's ARN has the role's name but not its path; ListRoleTags wants the name only.
_SESSION = re.compile(_PARTITION + r":sts::(?P<account>\d{12}):assumed-role/(?P<name>[^/]+)/.+")
_IAM = re.compile(_PARTITION + r":iam::(?P<account>\d{12}):(?P<kind>user|role)/(?:.*/)?(?P<name>[^/]+)")
_APP_PROFILE = re.compile(_PARTITION + r":bedrock:(?P<region>[a-z0-9-]+):\d{12}:application-inference-profile/\S+")
_ERRORS = (ClientError, BotoCoreError, DeadlineExceeded)


def _why(err: Exception) -> str:
    return (error_code(err) or "error") if isinstance(err, ClientError) else type(err).__name__


class TagLookup:
    """IAM principals' and application inference profiles' tags, each asked for at most once per run.

    A tag that cannot be read (denied, gone, throttled past the client's own retries, a principal of another
    account) makes an empty answer, is logged, and adds a sentence to `failures` for the report to show.
    """

    def __init__(self, iam: Any, bedrock_for_region: Callable[[str], Any], account_id: str):
        self._iam = iam
        self._bedrock_for_region = bedrock_for_region
        self.account_id = account_id  # the caller's own: IAM answers only for its principals
        self.failures: list[str] = []
        self._principals: dict[tuple[str, str], dict[str, str]] = {}  # (role|user, name) -> tags
        self._arns: dict[str, dict[str, str]] = {}
        self._profiles: dict[str, dict[str, str]] = {}

    def _fail(self, message: str) -> dict[str, str]:
        log.warning("attribution: %s", message)
        self.failures.append(message)
        return {}

    def principal_tags(self, identity_arn: str) -> dict[str, str]:
        """The IAM tags of the user or role behind `identity_arn` (a session resolves to its role)."""
        if identity_arn not in self._arns:
            self._arns[identity_arn] = self._principal_tags(identity_arn)
        return self._arns[identity_arn]

    def _principal_tags(self, arn: str) -> dict[str, str]:
        session, iam = _SESSION.fullmatch(arn), _IAM.fullmatch(arn)
        if session:
            kind, account, name = "role", session["account"], session["name"]
        elif iam:
            kind, account, name = iam["kind"], iam["account"], iam["name"]
        else:
            return self._fail(f"{arn!r} is not an IAM user, role or assumed-role session: it has no tags to read")
        if account != self.account_id:
            return self._fail(
                f"{arn} is in account {account}, not this account ({self.account_id}): its IAM tags cannot be read"
            )
        if (kind, name) not in self._principals:
            try:
                self._principals[kind, name] = self._iam_tags(kind, name)
            except _ERRORS as err:
                self._principals[kind, name] = self._fail(
                    f"the IAM tags of {kind} {name} ({arn}) could not be read: {_why(err)}"
                )
        return self._principals[kind, name]

    def _iam_tags(self, kind: str, name: str) -> dict[str, str]:
        params = {"RoleName": name} if kind == "role" else {"UserName": name}
        ask = self._iam.list_role_tags if kind == "role" else self._iam.list_user_tags
        tags: dict[str, str] = {}
        while True:
            page = ask(**params)
            tags.update({tag["Key"]: tag["Value"] for tag in page.get("Tags", [])})
            if not page.get("IsTruncated") or not page.get("Marker"):
                return tags
            params["Marker"] = page["Marker"]

    def profile_tags(self, model_id: str) -> dict[str, str]:
        """The tags of an application inference profile, asked in the profile's own region (its ARN names it, and
        a profile is invoked only there); any other model id has none, and that is no failure."""
        match = _APP_PROFILE.fullmatch(model_id)
        if not match:
            return {}
        if model_id not in self._profiles:
            try:
                # One answer: Bedrock's ListTagsForResource has no paging (no nextToken in its API).
                response = self._bedrock_for_region(match["region"]).list_tags_for_resource(resourceARN=model_id)
                self._profiles[model_id] = {tag["key"]: tag["value"] for tag in response.get("tags", [])}
            except _ERRORS as err:
                self._profiles[model_id] = self._fail(
                    f"the tags of application inference profile {model_id} could not be read: {_why(err)}"
                )
        return self._profiles[model_id]


class Tags(Protocol):
    """What attribute_frame asks: TagLookup, or any stand-in."""

    def principal_tags(self, identity_arn: str) -> dict[str, str]: ...

    def profile_tags(self, model_id: str) -> dict[str, str]: ...


@dataclass(frozen=True)
class SourceCounts:
    """How many usage rows took a key's value from each source, for the report's summary."""

    metadata: int = 0
    profile: int = 0
    iam: int = 0
    unattributed: int = 0


def _texts(column: pd.Series, value_of: Callable[[Any], str]) -> np.ndarray:
    """`value_of` each row's value, as an object array: once per category where the column is a categorical (the
    usage frame's keys), a missing value read as None."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        per_category = object_column([*map(value_of, column.cat.categories.tolist()), value_of(None)])
        return per_category[column.cat.codes.to_numpy()]  # code -1 (missing): the last
    return object_column([value_of(None if pd.isna(value) else value) for value in column.tolist()])


def _blank(texts: np.ndarray) -> np.ndarray:
    """Where the text says nothing (empty or whitespace), each distinct text tested once."""
    blank = {text: not text.strip() for text in dict.fromkeys(texts.tolist())}
    return np.fromiter(map(blank.__getitem__, texts.tolist()), dtype=bool, count=len(texts))


def _tag_values(column: pd.Series, tags: dict[Any, dict[str, str]], key: str) -> np.ndarray:
    """Each row's value of tag `key` on what `column` names ("" where it has none, or was not looked up)."""
    values = {name: found.get(key, "") for name, found in tags.items()}
    return _texts(column, lambda name: str(values.get(name, "")))


def attribute_frame(
    frame: pd.DataFrame, keys: Sequence[str], lookup: Tags
) -> tuple[pd.DataFrame, dict[str, SourceCounts]]:
    """A copy of `frame` (columns `identity_arn`, `model_id`, `meta:<key>` per key) with one column per key holding
    its value ("" when none: show UNATTRIBUTED), and per key how many rows each source gave.

    For each key the request's metadata wins (the caller chose it for this very call), then the application
    profile's tag (set on what was called), then the caller's IAM tag (set on who called). Each distinct identity
    and model id is looked up once, and only where a row needs it (a multi-tenant day whose every call carries its
    tenant in the metadata asks IAM nothing); the rows are mapped, never iterated.
    """
    out = frame.copy()
    counts: dict[str, SourceCounts] = {}
    if not keys:
        return out, counts
    for key in keys:
        if key in frame.columns:
            raise ConfigError("ATTRIBUTION_KEYS", f"{key!r} is also the name of a usage column; choose another key")
    metadata = {key: _texts(frame[METADATA_PREFIX + key], lambda value: "" if value is None else str(value))
                for key in keys}  # fmt: skip
    # A blank value says nothing (a tag value may be empty): the next source is asked.
    without_metadata = {key: _blank(values) for key, values in metadata.items()}
    wanting = np.logical_or.reduce(list(without_metadata.values()))
    profiles = {model: lookup.profile_tags(str(model)) for model in frame.loc[wanting, "model_id"].unique()}
    profile_values = {key: _tag_values(frame["model_id"], profiles, key) for key in keys}
    wanting_iam = np.logical_or.reduce([without_metadata[key] & _blank(profile_values[key]) for key in keys])
    principals = {arn: lookup.principal_tags(str(arn)) for arn in frame.loc[wanting_iam, "identity_arn"].unique()}
    for key in keys:
        from_metadata = metadata[key]
        from_profile = profile_values[key]
        from_iam = _tag_values(frame["identity_arn"], principals, key)
        has_metadata = ~without_metadata[key]
        has_profile = ~has_metadata & ~_blank(from_profile)
        has_iam = ~has_metadata & ~has_profile & ~_blank(from_iam)
        chosen = np.where(
            has_metadata, from_metadata, np.where(has_profile, from_profile, np.where(has_iam, from_iam, ""))
        )
        out[key] = pd.Categorical(chosen)  # a row key of the report, like the usage frame's: worked on as codes
        counts[key] = SourceCounts(
            metadata=int(has_metadata.sum()),
            profile=int(has_profile.sum()),
            iam=int(has_iam.sum()),
            unattributed=int(len(frame) - has_metadata.sum() - has_profile.sum() - has_iam.sum()),
        )
    return out, counts


def attribute_usage(usage: pd.DataFrame, keys: Sequence[str], aws: AwsClients) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Each row's value per ATTRIBUTION_KEYS key (request metadata, else profile tag, else IAM tag), and what the
    footer says about it: how many rows each source gave and the tag lookups that failed (never fatal)."""
    if not keys:
        return usage, {}
    try:
        account = aws.account_id()
    except (ClientError, BotoCoreError, DeadlineExceeded) as err:
        log.warning("cannot tell this account's id (%s); IAM tags of every principal count as another account's", err)
        account = ""
    lookup = TagLookup(aws.client("iam"), lambda region: aws.client("bedrock", region), account)
    usage, sources = attribute_frame(usage, keys, lookup)
    return usage, {
        "sources": {key: vars(counts) for key, counts in sources.items()},
        "failures": sorted(set(lookup.failures)),
    }
