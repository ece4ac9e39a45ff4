"""The bill per identity in the stack: CurExport and CurTable, the Glue table over a CUR 2.0 export (its columns and
its partition projection) and what the function's role may do with it, evaluated with the policy simulation of
tests/test_stack_policies.py for the parameter values a deployment would give.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from lambda_function.bill.cur import COST_COLUMNS, settled_query

from .test_stack_policies import (
    ACCOUNT,
    BUCKET,
    PREFIX,
    REGION,
    Stack,
    list_decision,
    object_arn,
    role_decision,
    template,
)

EXPORT = "s3://payer-cur/cur/bedrock-identity"
WORKGROUP = "ReportHistoryWorkGroup-physical-id"  # the workgroup's Ref, as the simulation names it
WORKGROUP_ARN = f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/{WORKGROUP}"
GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}"


# ---------------------------------------------------------------------------------------------------------------
# Parameters and conditions


def _accepts(parameter: str, value: str) -> bool:
    return re.fullmatch(template()["Parameters"][parameter]["AllowedPattern"], value, re.ASCII) is not None


def test_the_export_is_a_folder_of_one_to_four_segments_with_no_wildcard():
    for good in ["", EXPORT, "s3://cur-bucket/cur", "s3://a.b-c/p/q/r/s", "s3://cur-bucket/my_export(1)/x.y"]:
        assert _accepts("CurExport", good), good
    for bad in [
        "s3://cur-bucket",  # the bucket alone: the export always sits under its prefix and name
        "s3://cur-bucket/",
        "s3://cur-bucket/cur/",  # the folder, without a trailing slash (the role's grants append /data/*)
        "s3://cur-bucket/a/b/c/d/e",  # deeper than the role's ListBucket grant is built for
        "s3://cur-bucket/cur/*",
        "s3://cur-bucket/${aws:username}",
        "s3://cur-bucket/a..b",
        "s3://Cur-Bucket/cur",
        "cur-bucket/cur",
        "s3://cur-bucket//cur",
        "s3://cur-bucket/cur export",
    ]:
        assert not _accepts("CurExport", bad), bad


def test_the_table_is_database_dot_table():
    for good in ["", "cur.data", "athenacurcfn_cur.cur_2_0", "billing.bedrock_cur"]:
        assert _accepts("CurTable", good), good
    for bad in ["cur", "cur.", ".data", "a.b.c", "cur.Data", "cur-db.data", "cur.data ", "`cur`.data"]:
        assert not _accepts("CurTable", bad), bad


def _rules_hold(stack: Stack) -> bool:
    return all(
        stack.truth(assertion["Assert"]) for rule in template()["Rules"].values() for assertion in rule["Assertions"]
    )


def test_without_an_export_nothing_of_the_bill_is_created_or_granted():
    stack = Stack()
    assert not stack.exists("CurExportTable") and not stack.exists("CurPolicy")
    assert role_decision(stack, "athena:StartQueryExecution", WORKGROUP_ARN) == "implicit"
    assert role_decision(stack, "glue:GetTable", f"{GLUE}:table/bedrock_usage/cur_export") == "implicit"


def test_an_export_alone_gets_the_stacks_table_an_export_and_a_table_only_the_grants():
    alone = Stack({"CurExport": EXPORT})
    assert alone.exists("CurExportTable") and alone.exists("CurPolicy") and _rules_hold(alone)
    named = Stack({"CurExport": EXPORT, "CurTable": "billing.cur_2_0"})
    assert not named.exists("CurExportTable") and named.exists("CurPolicy") and _rules_hold(named)
    # a table without its export: the stack would not know what the role must read
    assert not _rules_hold(Stack({"CurTable": "billing.cur_2_0"}))


def test_the_function_is_told_the_export_its_table_and_athena():
    def environment(stack: Stack) -> dict[str, str]:
        return stack.properties("ReportFunction")["Environment"]["Variables"]

    assert {k: environment(Stack())[k] for k in ("CUR_EXPORT", "CUR_TABLE", "BILL_ENGINE")} == {
        "CUR_EXPORT": "",
        "CUR_TABLE": "",
        "BILL_ENGINE": "athena",
    }
    alone = environment(Stack({"CurExport": EXPORT}))
    assert alone["CUR_EXPORT"] == EXPORT and alone["CUR_TABLE"] == "bedrock_usage.cur_export"
    assert alone["ATHENA_WORKGROUP"] == WORKGROUP  # the stack's, with its bytes-scanned cutoff
    named = environment(Stack({"CurExport": EXPORT, "CurTable": "billing.cur_2_0", "HistoryDatabaseName": "h"}))
    assert named["CUR_TABLE"] == "billing.cur_2_0"
    assert environment(Stack({"CurExport": EXPORT, "HistoryDatabaseName": "finops"}))["CUR_TABLE"] == (
        "finops.cur_export"
    )


# ---------------------------------------------------------------------------------------------------------------
# The table: CUR 2.0's columns, partition projection on the billing period

CUR_COLUMNS = {
    "bill_billing_period_start_date": "timestamp",
    "bill_billing_entity": "string",
    "line_item_usage_start_date": "timestamp",
    "line_item_usage_end_date": "timestamp",
    "line_item_usage_account_id": "string",
    "line_item_line_item_type": "string",
    "line_item_product_code": "string",
    "line_item_usage_type": "string",
    "line_item_operation": "string",
    "line_item_unblended_cost": "double",
    "line_item_blended_cost": "double",
    "line_item_net_unblended_cost": "double",
    "line_item_usage_amount": "double",
    "line_item_iam_principal": "string",
    "product_servicecode": "string",
    "product_region_code": "string",
    "product": "map<string,string>",
    "resource_tags": "map<string,string>",
}


def test_the_table_has_cur_2_0s_columns_in_parquet():
    table = Stack({"CurExport": EXPORT}).properties("CurExportTable")
    assert table["DatabaseName"] == "ReportHistoryDatabase-physical-id"  # the history database, by its Ref
    storage = table["TableInput"]["StorageDescriptor"]
    assert {c["Name"]: c["Type"] for c in storage["Columns"]} == CUR_COLUMNS
    assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert "Parquet" in storage["InputFormat"] and "Parquet" in storage["OutputFormat"]
    assert storage["Location"] == f"{EXPORT}/data/"
    assert table["TableInput"]["PartitionKeys"] == [
        {"Name": "billing_period", "Type": "string", "Comment": "BILLING_PERIOD=yyyy-MM in the export's keys"}
    ]


@pytest.mark.parametrize("metric", sorted(COST_COLUMNS))
def test_every_column_the_bills_query_reads_is_in_the_table(metric):
    sql = settled_query(datetime(2026, 11, 30, 23, tzinfo=UTC), datetime(2026, 12, 1, 23, tzinfo=UTC), metric)
    unquoted = re.sub(r"'[^']*'", "''", sql)  # the map's keys and the literals are no columns
    read = set(re.findall(r"\b(?:bill|line_item|product|resource)_[a-z_]+\b|\bproduct\b|\bbilling_period\b", unquoted))
    table = Stack({"CurExport": EXPORT}).properties("CurExportTable")["TableInput"]
    known = {c["Name"] for c in table["StorageDescriptor"]["Columns"]} | {k["Name"] for k in table["PartitionKeys"]}
    assert read and read <= known, sorted(read - known)
    assert "'2026-11', '2026-12'" in sql  # a day across a month's end reads two partitions, both projected


def test_the_billing_period_is_projected_month_by_month_onto_the_exports_folders():
    parameters = Stack({"CurExport": EXPORT}).properties("CurExportTable")["TableInput"]["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.billing_period.type"] == "date"
    assert parameters["projection.billing_period.format"] == "yyyy-MM"
    assert parameters["projection.billing_period.range"] == "2024-01,NOW"
    assert parameters["projection.billing_period.interval"] == "1"
    assert parameters["projection.billing_period.interval.unit"] == "MONTHS"
    template_ = parameters["storage.location.template"]
    assert template_ == f"{EXPORT}/data/BILLING_PERIOD=${{billing_period}}/"
    # the folder Data Exports writes a month to is the one the projection names, and the role may read it
    folder = template_.replace("${billing_period}", "2026-11")
    assert folder == f"{EXPORT}/data/BILLING_PERIOD=2026-11/"
    stack = Stack({"CurExport": EXPORT})
    assert role_decision(
        stack, "s3:GetObject", object_arn(EXPORT, "data/BILLING_PERIOD=2026-11/part-0.snappy.parquet")
    ) == ("allowed")


# ---------------------------------------------------------------------------------------------------------------
# The policy: least privilege


def test_athena_runs_in_the_stacks_workgroup_only():
    stack = Stack({"CurExport": EXPORT})
    for action in [
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StopQueryExecution",
    ]:
        assert role_decision(stack, action, WORKGROUP_ARN) == "allowed", action
        assert role_decision(stack, action, f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/primary") == "implicit", (
            action
        )
    for action in ["athena:DeleteWorkGroup", "athena:UpdateWorkGroup", "athena:CreateNamedQuery"]:
        assert role_decision(stack, action, WORKGROUP_ARN) == "implicit", action


@pytest.mark.parametrize(
    ("parameters", "database", "table"),
    [
        ({"CurExport": EXPORT}, "bedrock_usage", "cur_export"),
        ({"CurExport": EXPORT, "HistoryDatabaseName": "finops"}, "finops", "cur_export"),
        ({"CurExport": EXPORT, "CurTable": "billing.cur_2_0"}, "billing", "cur_2_0"),
    ],
)
def test_glue_reads_exactly_the_cur_table(parameters, database, table):
    stack = Stack(parameters)
    for action in ["glue:GetTable", "glue:GetDatabase", "glue:GetPartitions"]:
        for resource in [f"{GLUE}:catalog", f"{GLUE}:database/{database}", f"{GLUE}:table/{database}/{table}"]:
            assert role_decision(stack, action, resource) == "allowed", (action, resource)
    assert role_decision(stack, "glue:GetTable", f"{GLUE}:table/{database}/other") == "implicit"
    assert role_decision(stack, "glue:GetTable", f"{GLUE}:table/{database}/reports") == "implicit"
    for action in ["glue:UpdateTable", "glue:DeleteTable", "glue:CreatePartition", "glue:GetTables"]:
        assert role_decision(stack, action, f"{GLUE}:table/{database}/{table}") == "implicit", action


@pytest.mark.parametrize(
    "export",
    ["s3://payer-cur/bedrock", EXPORT, "s3://payer-cur/a/b/bedrock-identity", "s3://payer-cur/a/b/c/bedrock-identity"],
)
def test_the_role_reads_the_exports_data_and_lists_exactly_its_prefix(export):
    stack = Stack({"CurExport": export})
    bucket, _, prefix = export.removeprefix("s3://").partition("/")
    parquet = "data/BILLING_PERIOD=2026-11/bedrock-identity-00001.snappy.parquet"
    assert role_decision(stack, "s3:GetObject", object_arn(export, parquet)) == "allowed"
    # the export's manifests, other exports in the bucket, other buckets: not granted
    assert role_decision(
        stack, "s3:GetObject", object_arn(export, "metadata/BILLING_PERIOD=2026-11/manifest.json")
    ) == ("implicit")
    assert role_decision(stack, "s3:GetObject", f"arn:aws:s3:::{bucket}/other-export/data/x.parquet") == "implicit"
    assert role_decision(stack, "s3:GetObject", f"arn:aws:s3:::other-{bucket}/{prefix}/data/x.parquet") == "implicit"
    for action in ["s3:PutObject", "s3:DeleteObject"]:
        assert role_decision(stack, action, object_arn(export, parquet)) == "implicit", action
    # listing: a billing period's folder, and the data folder itself; nothing around it
    assert list_decision(stack, bucket, f"{prefix}/data/BILLING_PERIOD=2026-11/") == "allowed"
    assert list_decision(stack, bucket, f"{prefix}/data/") == "allowed"
    assert list_decision(stack, bucket, f"{prefix}/metadata/") == "implicit"
    assert list_decision(stack, bucket, f"{prefix}-other/data/") == "implicit"
    assert list_decision(stack, bucket, f"x{prefix}/data/") == "implicit"
    assert list_decision(stack, bucket, "") == "implicit" and list_decision(stack, bucket, None) == "implicit"
    assert list_decision(stack, f"other-{bucket}", f"{prefix}/data/") == "implicit"
    assert role_decision(stack, "s3:GetBucketLocation", f"arn:aws:s3:::{bucket}") == "allowed"


def test_athena_writes_and_reads_its_results_where_the_workgroup_puts_them():
    stack = Stack({"CurExport": EXPORT})
    location = stack.properties("ReportHistoryWorkGroup")["WorkGroupConfiguration"]["ResultConfiguration"]
    assert location["OutputLocation"] == f"s3://{BUCKET}/{PREFIX}-athena-results/"
    result = f"arn:aws:s3:::{BUCKET}/{PREFIX}-athena-results/0f1e2d3c.csv"
    for action in ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"]:
        assert role_decision(stack, action, result) == "allowed", action
    assert role_decision(stack, "s3:DeleteObject", result) == "implicit"
    # without an export the role has no business there
    assert role_decision(Stack(), "s3:PutObject", result) == "implicit"
    # in a bucket of yours, there too
    yours = Stack({"CurExport": EXPORT, "ReportBucketName": "my-reports"})
    assert role_decision(yours, "s3:PutObject", f"arn:aws:s3:::my-reports/{PREFIX}-athena-results/q.csv") == "allowed"


def test_the_workgroup_still_stops_a_query_at_its_cutoff():
    workgroup = Stack({"CurExport": EXPORT}).properties("ReportHistoryWorkGroup")["WorkGroupConfiguration"]
    assert workgroup["EnforceWorkGroupConfiguration"] is True
    assert 0 < workgroup["BytesScannedCutoffPerQuery"] <= 100 * 2**30


def test_what_the_demo_and_tests_write_is_what_the_table_reads():
    from local_aws.cur_parquet import CUR_COLUMNS as WRITTEN

    glue = {
        "TIMESTAMP": "timestamp",
        "DOUBLE": "double",
        "VARCHAR": "string",
        "MAP(VARCHAR, VARCHAR)": "map<string,string>",
    }
    assert {name: glue[kind] for name, kind in WRITTEN.items()} == {
        name: kind for name, kind in CUR_COLUMNS.items() if name in WRITTEN
    }
    # the table has every column the writer has; beyond it only line_item_blended_cost (BlendedCost's column)
    assert set(CUR_COLUMNS) - set(WRITTEN) <= {"line_item_blended_cost"}
