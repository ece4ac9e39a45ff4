"""S3 objects as the store sees them: read (None when missing), write, create only if absent, replace only if
unchanged. The one place that knows S3's error codes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from lambda_function.aws import error_code
from lambda_function.errors import ConfigError

# A missing object. AccessDenied too: without s3:ListBucket on the prefix, S3 answers a missing key with 403.
MISSING = frozenset({"NoSuchKey", "404", "AccessDenied"})
# A conditional write that lost: the object exists (If-None-Match) or changed (If-Match), or another write of it is
# in flight.
LOST_RACE = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
# A bucket or object that cannot be used at all: a setting names the wrong one, or the role may not read it.
UNUSABLE = frozenset({"NoSuchKey", "NoSuchBucket", "AccessDenied", "AllAccessDisabled", "404", "403"})

JSON = "application/json"
CSV = "text/csv; charset=utf-8"


class S3Client(Protocol):
    """The S3 operations the store uses (a boto3 S3 client, or our retrying wrapper of one)."""

    def get_object(self, **params: Any) -> Any: ...
    def put_object(self, **params: Any) -> Any: ...
    def list_objects_v2(self, **params: Any) -> Any: ...
    def generate_presigned_url(self, *args: Any, **params: Any) -> Any: ...


@dataclass(frozen=True)
class StoredObject:
    body: bytes
    etag: str


class Bucket:
    """One bucket's objects."""

    def __init__(self, s3: S3Client, name: str):
        self.s3, self.name = s3, name

    def uri(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    def get(self, key: str) -> StoredObject | None:
        """The object, or None when it is not there. Other errors raise."""
        try:
            response = self.s3.get_object(Bucket=self.name, Key=key)
        except ClientError as err:
            if error_code(err) in MISSING:
                return None
            raise
        return StoredObject(bytes(response["Body"].read()), str(response.get("ETag", "")))

    def put(self, key: str, body: bytes, content_type: str, metadata: dict[str, str] | None = None) -> str:
        extra = {"Metadata": metadata} if metadata else {}
        self.s3.put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type, **extra)
        return self.uri(key)

    def create(self, key: str, body: bytes, content_type: str = JSON) -> str | None:
        """Write `key` only if it does not exist (If-None-Match): its ETag, or None when it already existed."""
        return self._conditional(key, body, content_type, IfNoneMatch="*")

    def overwrite(self, key: str, body: bytes, content_type: str = JSON) -> str:
        """Write `key` whatever is there: the new ETag."""
        response = self.s3.put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type)
        return str(response.get("ETag", ""))

    def replace(self, key: str, body: bytes, etag: str, content_type: str = JSON) -> str | None:
        """Write `key` over the version whose ETag is `etag` (If-Match): the new ETag, or None when it changed."""
        return self._conditional(key, body, content_type, IfMatch=etag)

    def _conditional(self, key: str, body: bytes, content_type: str, **condition: str) -> str | None:
        try:
            response = self.s3.put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type, **condition)
        except ClientError as err:
            if error_code(err) in LOST_RACE:
                return None
            raise
        return str(response.get("ETag", ""))

    def keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        params: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix}
        while True:
            page = self.s3.list_objects_v2(**params)
            keys += [item["Key"] for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return keys
            params["ContinuationToken"] = page["NextContinuationToken"]

    def check(self, prefix: str, setting: str) -> None:
        """The bucket exists and its `prefix` may be listed (the role's s3:ListBucket is scoped to it)."""
        try:
            self.s3.list_objects_v2(Bucket=self.name, Prefix=prefix, MaxKeys=1)
        except ClientError as err:
            code = error_code(err)
            if code in UNUSABLE:
                raise ConfigError(setting, f"{self.name!r} cannot be used ({code})") from None
            raise

    def presigned_link(self, key: str, seconds: int) -> str:
        return str(
            self.s3.generate_presigned_url("get_object", Params={"Bucket": self.name, "Key": key}, ExpiresIn=seconds)
        )


def read_location(location: str, setting: str, s3: S3Client) -> bytes:
    """What a setting naming a file points to (PRICE_OVERRIDES, BUDGETS): a local path or s3://bucket/key, read on
    every run (it may change). Any problem is a ConfigError naming the setting."""
    if not location.startswith("s3://"):
        try:
            return Path(location).read_bytes()
        except OSError as err:
            raise ConfigError(setting, f"{location!r} cannot be read: {err.strerror}") from None
    bucket, key = location.removeprefix("s3://").split("/", 1)
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as err:
        code = error_code(err)
        if code in UNUSABLE:
            raise ConfigError(setting, f"{location!r} cannot be read ({code})") from None
        raise
