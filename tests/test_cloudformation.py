"""The stack: cfn-lint and checkov clean, and deployed to moto's CloudFormation with the resources it promises."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "cloudformation" / "template.yaml"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
ACCOUNT = "123456789012"
LOG_GROUPS = [
    f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/bedrock/modelinvocations",
    "arn:aws:logs:eu-west-1:444455556666:log-group:/aws/bedrock/eu",
]


def test_cfn_lint_finds_nothing():
    result = subprocess.run(
        # informational rules too (-c I): e.g. an explicit deletion policy on every stateful resource
        [str(Path(sys.executable).parent / "cfn-lint"), "-c", "I", "--", str(TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    not CHECKOV.exists() and os.environ.get("REQUIRE_CHECKOV") != "1",
    reason="checkov lives in .venv-checkov (make checkov); CI installs it and sets REQUIRE_CHECKOV=1",
)
def test_checkov_passes_with_only_justified_skips():
    # Relative path from the repository root, as `make checkov` runs it: checkov adds the template's path to each
    # mapping as `__file__`, and CKV_AWS_45 then scans it as an environment variable; an absolute path of exactly
    # 40 characters (CI's checkout was one) matches its AWS-secret-key pattern.
    result = subprocess.run(
        [
            str(CHECKOV),
            "--skip-download",
            "--framework",
            "cloudformation",
            "-f",
            str(TEMPLATE.relative_to(ROOT)),
            "-o",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    assert report["summary"]["failed"] == 0, [c["check_id"] for c in report["results"]["failed_checks"]]
    assert report["summary"]["passed"] > 20
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment", "")) > 30, skipped["check_id"]


def _tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_function/__init__.py", "def lambda_handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def test_the_stack_deploys_to_moto(aws):
    # GIVEN the package in an artifact bucket and a pandas layer
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="pkg.zip", Body=_tiny_zip())
    layer = aws.client("lambda").publish_layer_version(
        LayerName="AWSSDKPandas-Python312-Arm64", Content={"ZipFile": _tiny_zip()}, CompatibleRuntimes=["python3.12"]
    )["LayerVersionArn"]
    cfn = aws.client("cloudformation")

    # WHEN the stack is created with a new report bucket
    cfn.create_stack(
        StackName="usage",
        TemplateBody=TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[
            {"ParameterKey": "LogGroupArns", "ParameterValue": ",".join(LOG_GROUPS)},
            {"ParameterKey": "Sender", "ParameterValue": "reports@example.com"},
            {"ParameterKey": "SenderIdentity", "ParameterValue": "example.com"},
            {"ParameterKey": "Recipients", "ParameterValue": "finops@example.com"},
            {"ParameterKey": "AllowedRecipients", "ParameterValue": "@example.com,cfo@partner.org"},
            {"ParameterKey": "ReportTimezone", "ParameterValue": "Europe/Berlin"},
            {"ParameterKey": "ArtifactBucket", "ParameterValue": "artifacts"},
            {"ParameterKey": "ArtifactKey", "ParameterValue": "pkg.zip"},
            {"ParameterKey": "PandasLayerArn", "ParameterValue": layer},
            {"ParameterKey": "AlarmEmail", "ParameterValue": "oncall@example.com"},
        ],
    )
    stack = cfn.describe_stacks(StackName="usage")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert {
        "FunctionName",
        "FunctionArn",
        "ReportBucket",
        "ReportPrefix",
        "DeadLetterQueueUrl",
        "AlarmTopicArn",
    } <= set(outputs)
    summaries = cfn.list_stack_resources(StackName="usage")["StackResourceSummaries"]
    types = {r.get("ResourceType") for r in summaries}
    assert {"AWS::Lambda::Function", "AWS::IAM::Role", "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::SNS::Topic"} <= types

    # THEN the function is what the README says
    function = aws.client("lambda").get_function(FunctionName=outputs["FunctionName"])["Configuration"]
    assert (function["Runtime"], function["Handler"]) == ("python3.12", "lambda_function.lambda_handler")
    # moto's CloudFormation ignores Architectures (it reports x86_64); the template asks for arm64
    assert "Architectures: [arm64]" in TEMPLATE.read_text()
    env = function["Environment"]["Variables"]
    assert env["LOG_GROUP_NAMES"] == ",".join(LOG_GROUPS)
    assert env["REPORT_BUCKET"] == outputs["ReportBucket"]
    assert env["REPORT_TIMEZONE"] == "Europe/Berlin"
    assert env["ALLOWED_RECIPIENTS"] == "@example.com,cfo@partner.org"
    assert function["Timeout"] == 900

    # AND the bucket is private, encrypted and versioned
    bucket = outputs["ReportBucket"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"

    # AND the role may query exactly the configured log groups, write only under the prefix, send only as the sender
    iam = aws.client("iam")
    role_name = function["Role"].rsplit("/", 1)[-1]
    document = iam.get_role_policy(RoleName=role_name, PolicyName="report")["PolicyDocument"]
    if isinstance(document, str):  # moto's CloudFormation stores the policy as Python's repr of the dict
        document = ast.literal_eval(document)
    statements = {s["Sid"]: s for s in document["Statement"] if "Sid" in s}
    # the report statements are a policy of their own (the key's policy names the role: no cycle through the bucket)
    reports = iam.get_role_policy(RoleName=role_name, PolicyName="reports")["PolicyDocument"]
    if isinstance(reports, str):
        reports = ast.literal_eval(reports)
    statements |= {s["Sid"]: s for s in reports["Statement"]}
    assert sorted(statements["QueryInvocationLogs"]["Resource"]) == sorted(LOG_GROUPS + [g + ":*" for g in LOG_GROUPS])
    assert statements["Reports"]["Resource"] == f"arn:aws:s3:::{bucket}/bedrock-usage/*"
    assert statements["Reports"]["Action"] == ["s3:PutObject", "s3:GetObject"]  # the marker is never deleted
    assert statements["CheckLogGroups"]["Resource"] == f"arn:aws:logs:*:{ACCOUNT}:log-group:*"
    assert statements["SendAsSender"]["Resource"] == f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/example.com"
    assert statements["SendAsSender"]["Action"] == "ses:SendEmail"  # SES v2, raw content: nothing else called
    # only as the sender, only to the allowed recipients (an @domain entry as *@domain)
    assert statements["SendAsSender"]["Condition"] == {
        "StringEquals": {"ses:FromAddress": "reports@example.com"},
        "ForAllValues:StringLike": {"ses:Recipients": ["reports@example.com", "*@example.com", "cfo@partner.org"]},
    }
    star = [s["Sid"] for s in document["Statement"] if s.get("Resource") == "*"]
    # GetQueryResults/StopQuery and the Price List's GetProducts have no resource-level permissions
    assert sorted(star) == ["CostExplorer", "PriceList", "QueryResults"]
    assert statements["CostExplorer"]["Action"] == ["ce:GetCostAndUsage", "ce:GetDimensionValues"]
    assert statements["PriceList"]["Action"] == "pricing:GetProducts"


def test_what_moto_does_not_deploy_is_in_the_template():
    # moto's CloudFormation applies only a bucket's encryption and tags (no policy, versioning, public access
    # block or lifecycle), and skips Scheduler schedules and
    # alarms (FACTS §5): those settings are read from the template itself.
    resources = cfn_yaml.loads(TEMPLATE.read_text())["Resources"]
    bucket = resources["ReportBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["LifecycleConfiguration"]["Rules"][0]["Status"] == "Enabled"
    tls = resources["ReportBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert (tls["Effect"], tls["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    schedule = resources["DailySchedule"]["Properties"]
    assert schedule["ScheduleExpressionTimezone"] == {"Ref": "ReportTimezone"}
    assert json.loads(schedule["Target"]["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    assert schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 3
    assert schedule["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    # the weekly price refresh is the same function with its own event, and fails into the same dead-letter queue
    refresh = resources["PriceRefreshSchedule"]["Properties"]
    assert json.loads(refresh["Target"]["Input"]) == {"refresh_prices": True}
    assert refresh["Target"]["Arn"] == schedule["Target"]["Arn"]
    assert refresh["Target"]["DeadLetterConfig"] == schedule["Target"]["DeadLetterConfig"]
    assert resources["DeadLetterQueue"]["Properties"]["KmsMasterKeyId"] == "alias/aws/sqs"
    alarms = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert {a["Properties"]["MetricName"] for a in alarms} == {
        "Errors",
        "NumberOfMessagesSent",  # messages visible kept the alarm in ALARM: later dead letters notified nobody
        "ReconciliationDriftAlert",  # the metric reconcile.emf_metric logs
        "ReportDelivered",  # metrics.report_metrics
        "Throttles",
        "Duration",
    }
    # the heartbeat: no delivered report for 26 hours alarms, and no data at all is what that looks like
    heartbeat = resources["HeartbeatAlarm"]["Properties"]
    assert (heartbeat["Period"] * heartbeat["EvaluationPeriods"], heartbeat["TreatMissingData"]) == (
        26 * 3600,
        "breaching",
    )
    assert (heartbeat["ComparisonOperator"], heartbeat["Threshold"]) == ("LessThanThreshold", 1)
    # JSON logs
    assert resources["ReportFunction"]["Properties"]["LoggingConfig"]["LogFormat"] == "JSON"
    # the stack's topic, or the one given (tests/test_stack_alarms.py: one of the two is required)
    topic = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
    assert all(a["Properties"]["AlarmActions"] == [topic] for a in alarms)


def test_a_first_deploy_on_a_new_account_and_alarms_that_deliver():
    resources = cfn_yaml.loads(TEMPLATE.read_text())["Resources"]
    parameters = cfn_yaml.loads(TEMPLATE.read_text())["Parameters"]
    # no reserved concurrency unless asked for: a low account quota refuses any
    assert parameters["ReservedConcurrency"]["Default"] == 0
    reserved = resources["ReportFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {"Fn::If": ["ReserveConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}
    conditions = cfn_yaml.loads(TEMPLATE.read_text())["Conditions"]
    assert conditions["ReserveConcurrency"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, 0]}]}
    # the alarm topic is encrypted with a key whose policy lets CloudWatch alarms publish (not alias/aws/sns)
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmKey"}
    statements = resources["AlarmKey"]["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])
    assert resources["AlarmKey"]["Properties"]["EnableKeyRotation"] is True


def test_every_setting_is_a_parameter_and_checkov_sees_every_statement():
    template = cfn_yaml.loads(TEMPLATE.read_text())
    env = template["Resources"]["ReportFunction"]["Properties"]["Environment"]["Variables"]
    # every setting load_config reads (but AWS_REGION, which Lambda sets) comes from the stack
    from lambda_function.config import SETTINGS

    settings = {setting.name for setting in SETTINGS}
    assert {"LOG_GROUP_NAMES", "QUERY_CONCURRENCY", "RECONCILE_LAG_DAYS", "LOG_LEVEL"} <= settings
    settings -= {"AWS_REGION", "PRICE_TABLE"}  # Lambda's own; the packaged table
    assert settings <= set(env), sorted(settings - set(env))
    # no Fn::If inside the role's policy: conditional statements are policies of their own
    role_policy = template["Resources"]["FunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert all("Fn::If" not in statement for statement in role_policy["Statement"])
    overrides = template["Resources"]["PriceOverridesPolicy"]
    assert overrides["Condition"] == "OverridesInS3"
    assert overrides["Properties"]["PolicyDocument"]["Statement"][0]["Action"] == "s3:GetObject"


def test_the_pandas_layer_resolves_for_every_mapped_region():
    template = cfn_yaml.loads(TEMPLATE.read_text())
    mapping = template["Mappings"]["PandasLayer"]
    layers = template["Resources"]["ReportFunction"]["Properties"]["Layers"][0]["Fn::If"]
    pattern = layers[2]["Fn::Sub"][0]
    arn = re.compile(r"^arn:aws:lambda:[a-z0-9-]+:\d{12}:layer:AWSSDKPandas-Python312-Arm64:\d+$")
    resolved = {
        region: pattern.replace("${AWS::Partition}", "aws")
        .replace("${AWS::Region}", region)
        .replace("${Account}", row["Account"])
        .replace("${Version}", row["Version"])
        for region, row in mapping.items()
    }
    assert all(arn.match(value) for value in resolved.values()), resolved
    # the publishing account is not the same everywhere (the reason a mapping is needed)
    assert resolved["us-east-1"] == "arn:aws:lambda:us-east-1:336392948345:layer:AWSSDKPandas-Python312-Arm64:29"
    assert resolved["eu-south-1"] == "arn:aws:lambda:eu-south-1:774444163449:layer:AWSSDKPandas-Python312-Arm64:26"
    assert len({row["Account"] for row in mapping.values()}) > 5 and len(mapping) >= 28
    # an explicit ARN still wins
    assert layers[0] == "LayerGiven" and layers[1] == {"Ref": "PandasLayerArn"}


def test_the_reports_are_one_athena_table_partitioned_by_day():
    from lambda_function.report.rows import CSV_COLUMNS

    resources = cfn_yaml.loads(TEMPLATE.read_text())["Resources"]
    table = resources["ReportHistoryTable"]["Properties"]["TableInput"]
    # the CSV's columns, in its order (the comment is the CSV header), read as text
    columns = table["StorageDescriptor"]["Columns"]
    assert [c["Comment"] for c in columns] == CSV_COLUMNS
    assert {c["Type"] for c in columns} == {"string"}
    assert table["Parameters"]["skip.header.line.count"] == "1"
    # partition projection over the report store's yyyy/mm/dd folders (deliver.report_key)
    assert [k["Name"] for k in table["PartitionKeys"]] == ["day"]
    assert table["Parameters"]["projection.day.format"] == "yyyy/MM/dd"
    template = table["Parameters"]["storage.location.template"]["Fn::Sub"][0]
    assert template.endswith("/reports/${!day}/")
    workgroup = resources["ReportHistoryWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert workgroup["EnforceWorkGroupConfiguration"] is True


def test_the_json_summaries_are_a_table_too():
    from lambda_function.summary import ReportSummary, Summary

    resources = cfn_yaml.loads(TEMPLATE.read_text())["Resources"]
    table = resources["ReportSummaryTable"]["Properties"]["TableInput"]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    # every column is a key of the summary the function writes
    document = Summary({"start": "", "end": ""}, ReportSummary(Decimal(0), 0, 0, 0, 0, 0, 0, 0)).document()
    assert {c["Name"] for c in table["StorageDescriptor"]["Columns"]} <= set(document) | {"reconciliation"}
