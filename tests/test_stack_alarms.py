"""The alarms reach somebody and watch what the function really publishes.

moto's CloudFormation skips alarms and does not evaluate Rules (FACTS §5): both are read from the template, resolved
for given parameter values by tests/test_stack_policies.py's Stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lambda_function.metrics import DIMENSION, NAMESPACE
from tests.test_stack_policies import ACCOUNT, REGION, Stack, template

ROOT = Path(__file__).resolve().parent.parent
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:oncall"


def broken_rules(stack: Stack) -> list[str]:
    """The AssertDescription of every rule assertion the parameters fail (CloudFormation refuses the deploy)."""
    failed = []
    for rule in template().get("Rules", {}).values():
        if "RuleCondition" in rule and not stack.truth(rule["RuleCondition"]):
            continue
        failed += [a["AssertDescription"] for a in rule["Assertions"] if not stack.truth(a["Assert"])]
    return failed


def alarms(stack: Stack) -> dict[str, dict[str, Any]]:
    return {
        logical_id: stack.properties(logical_id)
        for logical_id, resource in template()["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_a_deploy_with_neither_an_address_nor_a_topic_is_refused():
    # AlarmEmail was optional: the topic had no subscriber and every alarm reached nobody
    (message,) = broken_rules(Stack({"AlarmEmail": ""}))
    assert "AlarmEmail" in message and "AlarmTopicArn" in message


def test_a_deploy_with_both_is_refused():
    (message,) = broken_rules(Stack({"AlarmEmail": "oncall@example.com", "AlarmTopicArn": TOPIC}))
    assert "not both" in message


def test_with_an_address_the_alarms_publish_to_the_stacks_topic_and_the_address_is_subscribed():
    stack = Stack({"AlarmEmail": "oncall@example.com"})
    assert broken_rules(stack) == []
    topic = stack.ref("AlarmTopic")
    assert {name: a["AlarmActions"] for name, a in alarms(stack).items()} == dict.fromkeys(alarms(stack), [topic])
    subscription = stack.properties("AlarmSubscription")
    assert (subscription["TopicArn"], subscription["Protocol"], subscription["Endpoint"]) == (
        topic,
        "email",
        "oncall@example.com",
    )
    assert stack.properties("AlarmTopic")["KmsMasterKeyId"] == stack.ref("AlarmKey")


def test_with_a_topic_the_alarms_publish_to_it_and_the_stack_makes_none():
    stack = Stack({"AlarmEmail": "", "AlarmTopicArn": TOPIC})
    assert broken_rules(stack) == []
    assert {name: a["AlarmActions"] for name, a in alarms(stack).items()} == dict.fromkeys(alarms(stack), [TOPIC])
    assert not any(stack.exists(name) for name in ("AlarmTopic", "AlarmKey", "AlarmSubscription"))
    outputs = stack.resolve(template()["Outputs"])
    assert outputs["AlarmTopicArn"]["Value"] == TOPIC


def test_the_dead_letter_alarm_counts_messages_sent():
    # messages visible stayed in ALARM until someone emptied the queue: a later dead letter notified nobody
    alarm = alarms(Stack())["DeadLetterAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/SQS", "NumberOfMessagesSent", "Sum")
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["TreatMissingData"]) == (
        "GreaterThanThreshold",
        0,
        "notBreaching",
    )


def test_every_alarm_on_the_functions_metrics_selects_this_function():
    # the function's metrics carry FunctionName as their one dimension (lambda_function.metrics): an alarm without
    # it watches a metric nobody publishes, and one stack's metric would satisfy another's alarm
    stack = Stack()
    function = stack.ref("ReportFunction")
    custom = {name: alarm for name, alarm in alarms(stack).items() if alarm["Namespace"] == NAMESPACE}
    assert {alarm["MetricName"] for alarm in custom.values()} == {"ReportDelivered", "ReconciliationDriftAlert"}
    for name, alarm in custom.items():
        assert alarm["Dimensions"] == [{"Name": DIMENSION, "Value": function}], name
    # ... as do the ones on Lambda's own metrics
    for alarm in alarms(stack).values():
        if alarm["Namespace"] == "AWS/Lambda":
            assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": function}]


def test_the_heartbeat_wants_one_delivered_report_in_26_hours():
    heartbeat = alarms(Stack())["HeartbeatAlarm"]
    assert heartbeat["MetricName"] == "ReportDelivered" and heartbeat["Statistic"] == "Sum"
    assert heartbeat["Period"] * heartbeat["EvaluationPeriods"] == 26 * 3600
    assert heartbeat["DatapointsToAlarm"] == heartbeat["EvaluationPeriods"]
    assert (heartbeat["ComparisonOperator"], heartbeat["Threshold"]) == ("LessThanThreshold", 1)
    assert heartbeat["TreatMissingData"] == "breaching"  # no datapoint is what a silent failure looks like


@pytest.mark.parametrize("metric", ["ReportDelivered", "ReconciliationDriftAlert"])
def test_the_alarmed_metrics_are_ones_the_function_publishes(metric):
    source = "\n".join(path.read_text() for path in (ROOT / "lambda_function").rglob("*.py"))
    assert f'"{metric}"' in source
