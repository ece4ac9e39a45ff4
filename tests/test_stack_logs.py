"""The S3-delivered invocation logs in the stack (LogSource=s3): the parameters and their rules, the Glue table over
the hour folders (partition projection onto the very folders Bedrock writes and the function reads), what the
function is told, and what its role may do, evaluated with the policy simulation of tests/test_stack_policies.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from lambda_function.config import SETTINGS
from lambda_function.sources.logs_sql import HOUR_FORMAT
from lambda_function.sources.s3logs import logs_prefix

from .test_stack_policies import (
    ACCOUNT,
    BUCKET,
    PREFIX,
    Stack,
    list_decision,
    object_arn,
    role_decision,
    template,
)

REGION = "us-east-1"
LOCATION = "s3://bedrock-logs-123456789012/bedrock/invocations"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
WORKGROUP_ARN = f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/ReportHistoryWorkGroup-physical-id"
GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}"
FOLDER = f"AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/{REGION}"
HOUR = "2026/11/20/07"
GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/bedrock/modelinvocations"


class RegionStack(Stack):
    """The template resolved in us-east-1 (the simulation's other pseudo parameters as they are)."""

    def ref(self, name: str) -> Any:
        return REGION if name == "AWS::Region" else super().ref(name)


def s3_stack(location: str = LOCATION, **parameters: str) -> RegionStack:
    return RegionStack({"LogSource": "s3", "LogS3Location": location, "LogGroupArns": "", **parameters})


def _environment(stack: Stack) -> dict[str, str]:
    return stack.properties("ReportFunction")["Environment"]["Variables"]


def _broken_rules(stack: Stack) -> list[str]:
    return [
        assertion["AssertDescription"]
        for rule in template()["Rules"].values()
        for assertion in rule["Assertions"]
        if not stack.truth(assertion["Assert"])
    ]


# ---------------------------------------------------------------------------------------------------------------
# Parameters and rules


def test_log_groups_with_cloudwatch_a_location_with_s3():
    assert _broken_rules(RegionStack()) == []  # cloudwatch, with log groups: as before
    assert _broken_rules(s3_stack()) == []  # s3, with a location and no log group
    assert _broken_rules(s3_stack(LogGroupArns=GROUP)) == []  # log groups given too: not read, not refused
    (broken,) = _broken_rules(RegionStack({"LogGroupArns": ""}))
    assert "LogGroupArns" in broken
    (broken,) = _broken_rules(RegionStack({"LogSource": "s3", "LogGroupArns": ""}))
    assert "LogS3Location" in broken
    # the key is the log bucket's: with cloudwatch it would grant nothing
    assert _broken_rules(s3_stack(LogBucketKmsKeyArn=KEY_ARN)) == []
    (broken,) = _broken_rules(RegionStack({"LogBucketKmsKeyArn": KEY_ARN}))
    assert "LogBucketKmsKeyArn" in broken


def test_the_location_pattern_takes_a_bucket_and_up_to_four_segments():
    def accepts(value: str) -> bool:
        return re.fullmatch(template()["Parameters"]["LogS3Location"]["AllowedPattern"], value, re.ASCII) is not None

    for good in ["", "s3://bedrock-logs", LOCATION, "s3://a.b-c/p/q/r/s", "s3://logs-bucket/bedrock_logs(1)"]:
        assert accepts(good), good
    for bad in [
        "s3://bedrock-logs/",
        "s3://bedrock-logs/logs/",
        "s3://bedrock-logs/a/b/c/d/e",  # deeper than the role's ListBucket grant is built for
        "s3://bedrock-logs/logs/*",
        "s3://bedrock-logs/${aws:username}",
        "s3://bedrock-logs//logs",
        "bedrock-logs/logs",
    ]:
        assert not accepts(bad), bad
    key = template()["Parameters"]["LogBucketKmsKeyArn"]["AllowedPattern"]
    assert re.fullmatch(key, KEY_ARN) and re.fullmatch(key, "")
    assert re.fullmatch(key, f"arn:aws:kms:{REGION}:{ACCOUNT}:key/mrk-{'0' * 32}")
    assert not re.fullmatch(key, f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/logs")  # IAM grants on a key's ARN
    assert not re.fullmatch(key, f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*")


def test_the_function_is_told_the_source_location_table_and_athena():
    cloudwatch = _environment(RegionStack())
    assert {k: cloudwatch[k] for k in ("LOG_SOURCE", "LOG_S3_LOCATION", "LOG_TABLE")} == {
        "LOG_SOURCE": "cloudwatch",
        "LOG_S3_LOCATION": "",
        "LOG_TABLE": "",
    }
    assert cloudwatch["LOG_GROUP_NAMES"] == RegionStack().parameters["LogGroupArns"]
    s3 = _environment(s3_stack(HistoryDatabaseName="finops"))
    assert s3["LOG_SOURCE"] == "s3" and s3["LOG_S3_LOCATION"] == LOCATION and s3["LOG_GROUP_NAMES"] == ""
    assert s3["LOG_TABLE"] == "finops.invocation_logs"  # the stack's table, in its database
    assert s3["LOG_ENGINE"] == "athena"  # the embedded engine is not in the package
    assert s3["ATHENA_WORKGROUP"] == "ReportHistoryWorkGroup-physical-id"  # with its bytes-scanned cutoff
    # and the function loads them as given
    settings = {setting.name: setting for setting in SETTINGS}
    for variable in ("LOG_SOURCE", "LOG_S3_LOCATION", "LOG_TABLE", "LOG_ENGINE"):
        assert settings[variable].parse(s3[variable]) == s3[variable], variable
    assert settings["LOG_GROUP_NAMES"].parse(s3["LOG_GROUP_NAMES"]) == ()


# ---------------------------------------------------------------------------------------------------------------
# The table: one string column, the hour folder projected


def test_the_table_reads_each_line_as_one_string():
    table = s3_stack().properties("InvocationLogsTable")
    assert table["DatabaseName"] == "ReportHistoryDatabase-physical-id"  # the history database, by its Ref
    inputs = table["TableInput"]
    assert inputs["Name"] == "invocation_logs"
    storage = inputs["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == [("line", "string")]
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
    # a field delimiter raw JSON never holds (JSON escapes every control character): a line is never split
    assert storage["SerdeInfo"]["Parameters"] == {"field.delim": "\x01"}
    assert "\x01" not in json.dumps({"prompt": "a\x01b", "tab": "\t"})
    assert storage["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    assert storage["OutputFormat"] == "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
    assert inputs["PartitionKeys"] == [
        {"Name": "log_hour", "Type": "string", "Comment": "the delivery's hour folder, yyyy/MM/dd/HH (UTC)"}
    ]


@pytest.mark.parametrize(
    ("location", "folder"),
    [
        (LOCATION, f"s3://bedrock-logs-123456789012/bedrock/invocations/{FOLDER}/"),
        ("s3://bedrock-logs-123456789012", f"s3://bedrock-logs-123456789012/{FOLDER}/"),  # no prefix
        ("s3://logs/a/b/c/d", f"s3://logs/a/b/c/d/{FOLDER}/"),
    ],
)
def test_the_hour_is_projected_onto_the_folder_bedrock_writes_and_the_function_reads(location, folder):
    inputs = s3_stack(location).properties("InvocationLogsTable")["TableInput"]
    parameters = inputs["Parameters"]
    assert {k: v for k, v in parameters.items() if k.startswith("projection.")} == {
        "projection.enabled": "true",
        "projection.log_hour.type": "date",
        "projection.log_hour.format": "yyyy/MM/dd/HH",
        "projection.log_hour.range": "2023/01/01/00,NOW",
        "projection.log_hour.interval": "1",
        "projection.log_hour.interval.unit": "HOURS",
    }
    location_template = parameters["storage.location.template"]
    assert location_template == folder + "${log_hour}/"  # the partition key, left for Athena to fill
    assert location_template.replace("${log_hour}", HOUR) == f"{folder}2026/11/20/07/"
    assert inputs["StorageDescriptor"]["Location"] == folder
    # the function names the same hour, and the same folder, for the embedded engine and for Athena
    assert datetime(2026, 11, 20, 7, 30, tzinfo=UTC).strftime(HOUR_FORMAT) == HOUR
    bucket, prefix = logs_prefix(location, ACCOUNT, REGION)
    assert f"s3://{bucket}/{prefix}/{HOUR}/" == location_template.replace("${log_hour}", HOUR)


# ---------------------------------------------------------------------------------------------------------------
# The role: exactly the log folder, the table, the workgroup


@pytest.mark.parametrize(
    "location",
    [
        "s3://bedrock-logs-123456789012",
        "s3://bedrock-logs-123456789012/bedrock",
        LOCATION,
        "s3://bedrock-logs-123456789012/a/b/bedrock",
        "s3://bedrock-logs-123456789012/a/b/c/bedrock",
    ],
)
def test_the_role_reads_exactly_the_log_folder_and_not_the_rest_of_the_bucket(location):
    stack = s3_stack(location)
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    under = f"{prefix}/" if prefix else ""
    record = f"{FOLDER}/{HOUR}/{ACCOUNT}_BedrockModelInvocationLogs_{REGION}_20261120T0715Z_0a1b.json.gz"
    body = f"{FOLDER}/{HOUR}/data/0a1b2c3d_input.json.gz"
    assert role_decision(stack, "s3:GetObject", object_arn(location, record)) == "allowed"
    assert (
        role_decision(stack, "s3:GetObject", object_arn(location, body)) == "allowed"
    )  # in the folder (the SQL skips it)
    for outside in [
        f"AWSLogs/210987654321/BedrockModelInvocationLogs/{REGION}/{HOUR}/x.json.gz",  # another account's
        f"AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/eu-west-1/{HOUR}/x.json.gz",  # another region's
        f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{HOUR}/x.json.gz",  # another service's
        "secrets.txt",
        f"{FOLDER}-other/{HOUR}/x.json.gz",
    ]:
        assert role_decision(stack, "s3:GetObject", object_arn(location, outside)) == "implicit", outside
    assert role_decision(stack, "s3:GetObject", f"arn:aws:s3:::{bucket}/x{under}{record}") == "implicit"
    assert role_decision(stack, "s3:GetObject", f"arn:aws:s3:::other-{bucket}/{under}{record}") == "implicit"
    if prefix:  # the same folder outside the prefix
        assert role_decision(stack, "s3:GetObject", f"arn:aws:s3:::{bucket}/{record}") == "implicit"
    for action in ["s3:PutObject", "s3:DeleteObject", "s3:GetObjectAcl"]:
        assert role_decision(stack, action, object_arn(location, record)) == "implicit", action
    # listing: an hour's folder and the log folder itself; nothing around them
    assert list_decision(stack, bucket, f"{under}{FOLDER}/{HOUR}/") == "allowed"
    assert list_decision(stack, bucket, f"{under}{FOLDER}/") == "allowed"
    assert list_decision(stack, bucket, f"{under}AWSLogs/{ACCOUNT}/") == "implicit"
    assert list_decision(stack, bucket, f"{under}AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/eu-west-1/") == "implicit"
    assert list_decision(stack, bucket, f"x{under}{FOLDER}/") == "implicit"
    assert list_decision(stack, bucket, "") == "implicit" and list_decision(stack, bucket, None) == "implicit"
    if prefix:
        assert list_decision(stack, bucket, f"{FOLDER}/") == "implicit"
        assert list_decision(stack, bucket, f"{prefix}/") == "implicit"
    assert list_decision(stack, f"other-{bucket}", f"{under}{FOLDER}/") == "implicit"
    assert role_decision(stack, "s3:GetBucketLocation", f"arn:aws:s3:::{bucket}") == "allowed"


def test_glue_reads_exactly_the_logs_table():
    stack = s3_stack(HistoryDatabaseName="finops")
    for action in ["glue:GetTable", "glue:GetDatabase", "glue:GetPartitions"]:
        for resource in [f"{GLUE}:catalog", f"{GLUE}:database/finops", f"{GLUE}:table/finops/invocation_logs"]:
            assert role_decision(stack, action, resource) == "allowed", (action, resource)
    for other in ["finops/cur_export", "finops/reports", "bedrock_usage/invocation_logs", "other/invocation_logs"]:
        assert role_decision(stack, "glue:GetTable", f"{GLUE}:table/{other}") == "implicit", other
    for action in ["glue:UpdateTable", "glue:DeleteTable", "glue:CreatePartition", "glue:GetTables"]:
        assert role_decision(stack, action, f"{GLUE}:table/finops/invocation_logs") == "implicit", action


def test_athena_runs_in_the_stacks_workgroup_with_logs_in_s3_and_no_cur_export():
    stack = s3_stack()
    assert stack.exists("ReportHistoryWorkGroup") and not stack.exists("CurPolicy")
    for action in ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"]:
        assert role_decision(stack, action, WORKGROUP_ARN) == "allowed", action
        assert role_decision(stack, action, f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/primary") == "implicit", (
            action
        )
    result = f"arn:aws:s3:::{BUCKET}/{PREFIX}-athena-results/0f1e2d3c.csv"
    for action in ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"]:
        assert role_decision(stack, action, result) == "allowed", action
    # no CUR grant came with it
    assert role_decision(stack, "glue:GetTable", f"{GLUE}:table/bedrock_usage/cur_export") == "implicit"


def test_an_sse_kms_log_bucket_is_decrypted_through_s3_only():
    via = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    stack = s3_stack(LogBucketKmsKeyArn=KEY_ARN)
    assert role_decision(stack, "kms:Decrypt", KEY_ARN, **via) == "allowed"
    assert role_decision(stack, "kms:Decrypt", KEY_ARN) == "implicit"  # not directly
    assert (
        role_decision(stack, "kms:Decrypt", KEY_ARN, **{"kms:ViaService": "s3.eu-west-1.amazonaws.com"}) == "implicit"
    )
    assert role_decision(stack, "kms:Decrypt", KEY_ARN.replace("0f1e", "ffff"), **via) == "implicit"
    for action in ["kms:GenerateDataKey", "kms:Encrypt", "kms:CreateGrant"]:
        assert role_decision(stack, action, KEY_ARN, **via) == "implicit", action
    assert not s3_stack().exists("LogKeyPolicy")  # SSE-S3: no key to grant
    assert role_decision(s3_stack(), "kms:Decrypt", KEY_ARN, **via) == "implicit"


def test_with_logs_in_s3_the_role_queries_no_log_group():
    stack = s3_stack(LogGroupArns=GROUP)
    for resource in [GROUP, f"{GROUP}:*"]:
        assert role_decision(stack, "logs:StartQuery", resource) == "implicit", resource
    assert role_decision(RegionStack({"LogGroupArns": GROUP}), "logs:StartQuery", GROUP) == "allowed"


def test_with_cloudwatch_nothing_of_the_s3_logs_is_created_or_granted():
    stack = RegionStack({"LogS3Location": LOCATION})  # a location given, LogSource left at cloudwatch
    for resource in ["InvocationLogsTable", "LogsPolicy", "LogKeyPolicy", "AthenaPolicy"]:
        assert not stack.exists(resource), resource
    record = f"{FOLDER}/{HOUR}/x.json.gz"
    assert role_decision(stack, "s3:GetObject", object_arn(LOCATION, record)) == "implicit"
    assert list_decision(stack, "bedrock-logs-123456789012", f"bedrock/invocations/{FOLDER}/{HOUR}/") == "implicit"
    assert role_decision(stack, "glue:GetTable", f"{GLUE}:table/bedrock_usage/invocation_logs") == "implicit"
    assert role_decision(stack, "athena:StartQueryExecution", WORKGROUP_ARN) == "implicit"
    assert (
        role_decision(stack, "kms:Decrypt", KEY_ARN, **{"kms:ViaService": f"s3.{REGION}.amazonaws.com"}) == "implicit"
    )
    assert _environment(stack)["LOG_TABLE"] == ""
