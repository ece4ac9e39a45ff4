"""Policy simulation over the template: who may write the report's numbers, use its key, and send its email.

No linter reads what a policy allows. Here the template's policies are resolved for given parameter values (Ref,
Fn::Sub, Fn::Join, Fn::Split, Fn::Select, Fn::If and the Conditions, with placeholder ARNs for the resources) and
evaluated for concrete requests by a small evaluator of IAM's rules: an explicit Deny wins, else an Allow is needed;
actions and resources match with `*` and `?`; the condition operators the template uses, with IAM's treatment of a
missing key (a negated operator matches it, ForAllValues passes an empty set). Identity policies are assumed to
allow everything where a resource policy is evaluated (an administrator with `s3:*` and `kms:*`), which is the case
the resource policies must hold against.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "eu-west-1"
STACK = "usage"
PREFIX = "bedrock-usage"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{STACK}-FunctionRole-A1B2C3D4E5F6"
ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
BREAK_GLASS_ARN = f"arn:aws:iam::{ACCOUNT}:role/ops/ReportRepair"
BUCKET = f"{STACK}-reportbucket-1a2b3c4d5e6f"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
# Resources' Ref and GetAtt values, as CloudFormation would give them (names made up, shapes real)
REFS = {"ReportBucket": BUCKET, "FunctionRole": ROLE_ARN.rsplit("/", 1)[1], "ReportKey": KEY_ARN.rsplit("/", 1)[1]}
ATTRIBUTES = {
    ("ReportBucket", "Arn"): f"arn:aws:s3:::{BUCKET}",
    ("FunctionRole", "Arn"): ROLE_ARN,
    ("ReportKey", "Arn"): KEY_ARN,
}
REQUIRED = {
    "LogGroupArns": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/bedrock/modelinvocations",
    "Sender": "Bedrock reports <reports@example.com>",
    "SenderIdentity": "example.com",
    "Recipients": "finops@example.com",
    "ArtifactBucket": "artifacts",
    "ArtifactKey": "pkg.zip",
    "AlarmEmail": "oncall@example.com",
}


@cache
def template() -> dict[str, Any]:
    return cfn_yaml.loads((ROOT / "cloudformation" / "template.yaml").read_text())


class _NoValue:
    """AWS::NoValue: the property, or the list item, is left out."""


NO_VALUE = _NoValue()


@dataclass
class Stack:
    """The template resolved for one set of parameter values."""

    parameters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        specs = template()["Parameters"]
        given = {**REQUIRED, **self.parameters}
        unknown = set(given) - set(specs)
        assert not unknown, unknown
        for name, spec in specs.items():
            value = given.get(name, spec.get("Default"))
            assert value is not None, f"{name} has no value"
            value = str(value)
            if "AllowedPattern" in spec:  # a value the stack would refuse is a mistake of the test
                items = value.split(",") if spec["Type"] == "CommaDelimitedList" else [value]
                assert all(re.fullmatch(spec["AllowedPattern"], item) for item in items), (name, value)
            self.parameters[name] = value

    # -- conditions and intrinsic functions ------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        return self.truth(template()["Conditions"][name])

    def truth(self, expression: Any) -> bool:
        (function, argument), *_ = expression.items()
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self.truth(argument[0])
        if function == "Fn::And":
            return all(self.truth(item) for item in argument)
        if function == "Fn::Or":
            return any(self.truth(item) for item in argument)
        if function == "Fn::Contains":  # a Rules function: whether the list holds the string
            items, item = (self.resolve(value) for value in argument)
            return str(item) in [str(value) for value in items]
        raise NotImplementedError(function)

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK,
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            spec = template()["Parameters"][name]
            value = self.parameters[name]
            return value.split(",") if spec["Type"] == "CommaDelimitedList" else value
        assert name in template()["Resources"], name
        return REFS.get(name, f"{name}-physical-id")

    def attribute(self, resource: str, name: str) -> str:
        assert resource in template()["Resources"], resource
        return ATTRIBUTES.get((resource, name), f"arn:placeholder:{resource}:{name}")

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                return self.attribute(*name.split(".", 1))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), *_ = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                resource, name = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.attribute(resource, name)
            if function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return self.sub(text, {key: self.resolve(item) for key, item in variables.items()})
            if function == "Fn::Join":
                delimiter, items = argument
                assert isinstance(delimiter, str), "Fn::Join takes a literal delimiter"
                return delimiter.join(str(item) for item in self.resolve(items))
            if function == "Fn::Split":
                delimiter, text = argument
                return str(self.resolve(text)).split(delimiter)
            if function == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if function == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
        items = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in items.items() if item is not NO_VALUE}

    # -- the resources ----------------------------------------------------------------------------------------------

    def exists(self, logical_id: str) -> bool:
        condition = template()["Resources"][logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def properties(self, logical_id: str) -> dict[str, Any]:
        assert self.exists(logical_id), f"{logical_id} is not created with these parameters"
        return self.resolve(template()["Resources"][logical_id].get("Properties", {}))

    def role_statements(self) -> list[dict[str, Any]]:
        """Every statement of the function role's policies: its own and the AWS::IAM::Policy resources attached."""
        statements = []
        for policy in self.properties("FunctionRole")["Policies"]:
            statements += policy["PolicyDocument"]["Statement"]
        for logical_id, resource in template()["Resources"].items():
            if resource["Type"] == "AWS::IAM::Policy" and self.exists(logical_id):
                properties = self.properties(logical_id)
                if REFS["FunctionRole"] in properties["Roles"]:
                    statements += properties["PolicyDocument"]["Statement"]
        return statements


# ---------------------------------------------------------------------------------------------------------------
# The evaluator


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


@dataclass(frozen=True)
class Request:
    principal: str  # the principal's ARN (a role's ARN for its sessions, as aws:PrincipalArn gives it)
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)  # condition keys; a list for a multivalued key

    def value(self, key: str) -> Any:
        if key == "aws:PrincipalArn":
            return self.principal
        return self.context.get(key)


def _operator(name: str, expected: list[str], actual: Any) -> bool:
    """One condition operator against a key's value (None when the request lacks the key)."""
    if name.startswith("ForAllValues:"):
        values = _listed(actual) if actual is not None else []
        return all(_operator(name.split(":", 1)[1], expected, value) for value in values)
    if name.startswith("ForAnyValue:"):
        values = _listed(actual) if actual is not None else []
        return any(_operator(name.split(":", 1)[1], expected, value) for value in values)
    negated = {
        "StringNotEquals": "StringEquals",
        "StringNotLike": "StringLike",
        "ArnNotEquals": "ArnEquals",
        "ArnNotLike": "ArnLike",
    }
    if name in negated:
        return actual is None or not _operator(negated[name], expected, actual)
    if actual is None:
        return False
    if name in ("StringEquals", "ArnEquals"):
        return str(actual) in expected
    if name == "StringEqualsIgnoreCase":
        return str(actual).lower() in [value.lower() for value in expected]
    if name in ("StringLike", "ArnLike"):
        return any(_wildcard(value, str(actual)) for value in expected)
    if name == "Bool":
        return str(actual).lower() in [value.lower() for value in expected]
    raise NotImplementedError(name)


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal is None or principal == "*":
        return True
    for kind, values in principal.items():
        for value in _listed(values):
            if value == "*" or value == request.principal:
                return True
            # an account's root in a resource policy stands for every principal of the account (IAM then decides)
            account = re.fullmatch(r"arn:aws[a-z-]*:iam::(\d{12}):root", value)
            if kind == "AWS" and account and f":{account.group(1)}:" in request.principal:
                return True
    return False


def statement_matches(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement and not any(
        _wildcard(action, request.action, ignore_case=True) for action in _listed(statement["Action"])
    ):
        return False
    if "Resource" in statement and not any(
        _wildcard(resource, request.resource) for resource in _listed(statement["Resource"])
    ):
        return False
    if not _principal_matches(statement.get("Principal"), request):
        return False
    for operator, keys in statement.get("Condition", {}).items():
        for key, expected in keys.items():
            if not _operator(operator, [str(value) for value in _listed(expected)], request.value(key)):
                return False
    return True


def decide(statements: list[Mapping[str, Any]], request: Request) -> str:
    """'denied' (an explicit Deny), 'allowed' (an Allow and no Deny) or 'implicit' (no statement allows it)."""
    matching = [statement for statement in statements if statement_matches(statement, request)]
    if any(statement["Effect"] == "Deny" for statement in matching):
        return "denied"
    return "allowed" if matching else "implicit"


# ---------------------------------------------------------------------------------------------------------------
# The evaluator itself, on IAM's documented cases


def role_decision(stack: Stack, action: str, resource: str, **context: str) -> str:
    """What IAM decides for the function's role asking `action` on `resource` (with condition keys `context`)."""
    return decide(stack.role_statements(), Request(ROLE_ARN, action, resource, context))


def object_arn(location: str, key: str) -> str:
    """The ARN of `key` under an s3://bucket[/prefix] location."""
    return "arn:aws:s3:::" + location.removeprefix("s3://") + "/" + key


def list_decision(stack: Stack, bucket: str, prefix: str | None) -> str:
    """What IAM decides for the role listing `bucket` (under `prefix`; None: with no prefix at all)."""
    context = {} if prefix is None else {"s3:prefix": prefix}
    return role_decision(stack, "s3:ListBucket", f"arn:aws:s3:::{bucket}", **context)


def test_the_evaluator_follows_iams_rules():
    deny = {
        "Effect": "Deny",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [ROLE_ARN]}},
    }
    allow = {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"}
    assert decide([allow], Request(ADMIN_ARN, "s3:GetObject", "arn:aws:s3:::b/k")) == "allowed"
    assert decide([allow], Request(ADMIN_ARN, "s3:PutObject", "arn:aws:s3:::b/k")) == "implicit"
    assert decide([allow, deny], Request(ADMIN_ARN, "s3:GetObject", "arn:aws:s3:::b/k")) == "denied"
    assert (
        decide([allow, deny], Request(ROLE_ARN, "s3:getobject", "arn:aws:s3:::b/k")) == "allowed"
    )  # actions: any case
    assert decide([allow], Request(ADMIN_ARN, "s3:GetObject", "arn:aws:s3:::B/k")) == "implicit"  # resources: exact
    # a negated operator matches a missing key; ForAllValues passes an empty set; a plain operator fails on none
    assert _operator("StringNotEquals", ["x"], None) and _operator("ForAllValues:StringLike", ["x"], [])
    assert not _operator("StringEquals", ["x"], None) and not _operator("StringLike", ["*"], None)
    assert _operator("ForAllValues:StringLike", ["*@a.com", "b@c.com"], ["x@a.com", "b@c.com"])
    assert not _operator("ForAllValues:StringLike", ["*@a.com"], ["x@a.com", "x@a.com.evil.org"])


def test_the_resolver_reads_the_templates_intrinsics():
    stack = Stack({"Sender": "Reports <r@example.com>"})
    assert stack.resolve({"Fn::Sub": "${ReportBucket.Arn}/${ReportPrefix}/*"}) == f"arn:aws:s3:::{BUCKET}/{PREFIX}/*"
    assert stack.resolve({"Fn::Sub": ["${!day}/${X}", {"X": {"Ref": "AWS::Region"}}]}) == "${day}/" + REGION
    assert stack.resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}) == "b"
    assert stack.resolve([1, {"Ref": "AWS::NoValue"}, 2]) == [1, 2]
    assert stack.condition("CreateBucket") and not Stack({"ReportBucketName": "mine"}).condition("CreateBucket")


# ---------------------------------------------------------------------------------------------------------------
# 1. Only the function writes its numbers

# the newest price table is the largest key name: this one would win forever, and the weekly refresh build on it
POISONED = f"arn:aws:s3:::{BUCKET}/{PREFIX}/prices/token_prices.2099-12-31.0123456789ab.csv"
ATHENA_RESULT = f"arn:aws:s3:::{BUCKET}/{PREFIX}-athena-results/2f1e0d9c-query.csv"
VIA_S3 = f"s3.{REGION}.amazonaws.com"


def _bucket(
    stack: Stack, principal: str, resource: str = POISONED, action: str = "s3:PutObject", tls: bool = True
) -> str:
    statements = stack.properties("ReportBucketPolicy")["PolicyDocument"]["Statement"]
    return decide(statements, Request(principal, action, resource, {"aws:SecureTransport": str(tls).lower()}))


def _key(stack: Stack, principal: str, action: str = "kms:GenerateDataKey", **context: str) -> str:
    statements = stack.properties("ReportKey")["KeyPolicy"]["Statement"]
    keys = {"via": "kms:ViaService", "object": "kms:EncryptionContext:aws:s3:arn"}
    return decide(
        statements, Request(principal, action, KEY_ARN, {keys[name]: value for name, value in context.items()})
    )


def test_an_administrator_cannot_plant_a_price_table_only_the_function_writes():
    stack = Stack()
    # the bucket policy: an explicit Deny for everyone but the function's role, whatever their IAM policies say
    assert _bucket(stack, ADMIN_ARN) == "denied"
    assert _bucket(stack, ROLE_ARN) != "denied"
    assert decide(stack.role_statements(), Request(ROLE_ARN, "s3:PutObject", POISONED)) == "allowed"
    assert _bucket(stack, BREAK_GLASS_ARN) == "denied"  # no break-glass role given
    # nor delete or roll back what the function wrote (a version deleted brings the previous one back)
    for action in ["s3:DeleteObject", "s3:DeleteObjectVersion"]:
        assert _bucket(stack, ADMIN_ARN, action=action) == "denied", action
        assert _bucket(stack, ROLE_ARN, action=action) != "denied", action
    summary = f"arn:aws:s3:::{BUCKET}/{PREFIX}/reports/2026/11/20/bedrock-usage_20261120T000000Z_20261121T000000Z.json"
    marker = f"arn:aws:s3:::{BUCKET}/{PREFIX}/budget-alerts/2026-11/team-80.json"
    assert _bucket(stack, ADMIN_ARN, summary) == "denied" and _bucket(stack, ADMIN_ARN, marker) == "denied"
    # reading stays open to IAM; Athena's results are outside the prefix; the function too goes over TLS only
    assert _bucket(stack, ADMIN_ARN, action="s3:GetObject") != "denied"
    assert _bucket(stack, ADMIN_ARN, ATHENA_RESULT) != "denied"
    assert _bucket(stack, ROLE_ARN, tls=False) == "denied"


def test_a_break_glass_role_may_write_when_one_is_given():
    stack = Stack({"BreakGlassRoleArn": BREAK_GLASS_ARN})
    assert _bucket(stack, BREAK_GLASS_ARN) != "denied"
    assert _bucket(stack, ROLE_ARN) != "denied"
    assert _bucket(stack, ADMIN_ARN) == "denied"
    assert _bucket(stack, BREAK_GLASS_ARN + "2") == "denied"  # exactly that role
    assert _key(stack, BREAK_GLASS_ARN, via=VIA_S3, object=POISONED) == "allowed"


def test_the_deny_follows_the_report_prefix():
    stack = Stack({"ReportPrefix": "finops/bedrock"})
    assert _bucket(stack, ADMIN_ARN, f"arn:aws:s3:::{BUCKET}/finops/bedrock/prices/x.csv") == "denied"
    assert _bucket(stack, ADMIN_ARN, f"arn:aws:s3:::{BUCKET}/finops/other.csv") != "denied"


def test_only_the_function_encrypts_with_the_report_key_and_only_through_s3():
    stack = Stack()
    report = f"arn:aws:s3:::{BUCKET}/{PREFIX}/prices/token_prices.2099-12-31.0123456789ab.csv"
    assert _key(stack, ROLE_ARN, via=VIA_S3, object=report) == "allowed"
    assert _key(stack, ROLE_ARN) == "implicit"  # not directly
    assert _key(stack, ROLE_ARN, via="s3.us-east-1.amazonaws.com", object=report) == "implicit"
    # an administrator's kms:* in IAM no longer reaches encryption: not through S3, not directly, not by a grant
    assert _key(stack, ADMIN_ARN, via=VIA_S3, object=report) == "implicit"
    for action in [
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:Encrypt",
        "kms:ReEncryptTo",
        "kms:CreateGrant",
    ]:
        assert _key(stack, ADMIN_ARN, action) == "implicit", action
    # readers decrypt and administrators administer, through IAM as before
    for action in [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:PutKeyPolicy",
        "kms:ScheduleKeyDeletion",
        "kms:EnableKeyRotation",
    ]:
        assert _key(stack, ADMIN_ARN, action) == "allowed", action
    # whoever runs a history query writes its result under the report key, in the results' own prefix only
    assert _key(stack, ADMIN_ARN, via=VIA_S3, object=ATHENA_RESULT) == "allowed"
    assert _key(stack, ADMIN_ARN, object=ATHENA_RESULT) == "implicit"


def test_athena_results_have_their_own_prefix_key_lifecycle_and_cutoff():
    stack = Stack()
    workgroup = stack.properties("ReportHistoryWorkGroup")["WorkGroupConfiguration"]
    location = workgroup["ResultConfiguration"]["OutputLocation"]
    assert location == f"s3://{BUCKET}/{PREFIX}-athena-results/"  # outside the report prefix and its Deny
    assert workgroup["ResultConfiguration"]["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": KEY_ARN,
    }
    assert workgroup["EnforceWorkGroupConfiguration"] is True  # a query cannot choose another place or key
    assert 10_000_000 <= workgroup["BytesScannedCutoffPerQuery"] <= 100 * 2**30
    # the key policy lets a query write exactly there (the object is the encryption context: no bucket key)
    result = location.replace("s3://", "") + "query-id.csv"
    assert _key(stack, ADMIN_ARN, via=VIA_S3, object=f"arn:aws:s3:::{result}") == "allowed"
    encryption = stack.properties("ReportBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["BucketKeyEnabled"] is False
    rules = stack.properties("ReportBucket")["LifecycleConfiguration"]["Rules"]
    results = [rule for rule in rules if location.endswith(f"/{rule['Prefix']}")]
    assert results and results[0]["Status"] == "Enabled" and results[0]["ExpirationInDays"] <= 90
    # in a bucket of yours the stack knows no key: SSE-S3
    yours = Stack({"ReportBucketName": "my-reports"}).properties("ReportHistoryWorkGroup")["WorkGroupConfiguration"]
    assert yours["ResultConfiguration"]["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}


# ---------------------------------------------------------------------------------------------------------------
# 2. Recipients are allowed, not free; 3. the SES sandbox


def _send(stack: Stack, identity: str, recipients: list[str], sender: str = "reports@example.com") -> str:
    arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{identity}"
    context = {"ses:FromAddress": sender, "ses:Recipients": recipients}
    return decide(stack.role_statements(), Request(ROLE_ARN, "ses:SendEmail", arn, context))


@pytest.mark.parametrize(
    "sender", ["Bedrock reports <reports@example.com>", "reports@example.com", "<reports@example.com>"]
)
def test_the_role_sends_only_as_the_senders_bare_address(sender):
    stack = Stack({"Sender": sender, "AllowedRecipients": "@example.com"})
    assert _send(stack, "example.com", ["finops@example.com"]) == "allowed"
    assert _send(stack, "example.com", ["finops@example.com"], sender="ceo@example.com") == "implicit"
    assert (
        _send(stack, "example.com", ["finops@example.com"], sender="Bedrock reports <reports@example.com>")
        == "implicit"
    )


def test_a_closed_list_of_addresses_is_exactly_who_may_receive():
    stack = Stack({"AllowedRecipients": "finops@example.com,cfo@partner.org"})
    assert _send(stack, "example.com", ["finops@example.com", "cfo@partner.org"]) == "allowed"
    assert _send(stack, "example.com", ["finops@example.com", "attacker@evil.example"]) == "implicit"
    assert _send(stack, "example.com", ["other@example.com"]) == "implicit"  # the domain is not on the list
    assert _send(stack, "example.com", ["xfinops@example.com"]) == "implicit"  # no wildcard crept in


def test_domain_entries_allow_their_domain_and_nothing_around_it():
    stack = Stack({"AllowedRecipients": "@example.com,boss@partner.org"})
    assert _send(stack, "example.com", ["anyone@example.com", "boss@partner.org"]) == "allowed"
    for outside in ["a@sub.example.com", "a@example.com.evil.org", "a@evilexample.com", "x@partner.org"]:
        assert _send(stack, "example.com", [outside]) == "implicit", outside


def test_without_allowed_recipients_the_grant_is_the_recipients_themselves():
    # a console deploy that leaves AllowedRecipients empty fails closed (make deploy passes RECIPIENTS' domains)
    stack = Stack({"Recipients": "finops@example.com,cfo@example.com"})
    assert _send(stack, "example.com", ["finops@example.com", "cfo@example.com"]) == "allowed"
    assert _send(stack, "example.com", ["colleague@example.com"]) == "implicit"


def test_the_function_and_its_grant_read_the_same_allowed_recipients():
    environment = Stack({"AllowedRecipients": "@example.com"}).properties("ReportFunction")["Environment"]
    assert environment["Variables"]["ALLOWED_RECIPIENTS"] == "@example.com"


def test_in_the_sandbox_the_recipients_verified_identities_are_granted_too():
    # SES authorizes against each recipient's verified identity as well: granted the sender's alone, the role got
    # "AccessDenied ... on resource ...:identity/cfo@partner.org"
    identity = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/cfo@partner.org"
    sandboxed = Stack({"AllowedRecipients": "@example.com,cfo@partner.org"})
    assert _send(sandboxed, "cfo@partner.org", ["cfo@partner.org"]) == "implicit"
    granted = Stack(
        {
            "AllowedRecipients": "@example.com,cfo@partner.org",
            "SesRecipientIdentityArns": f"{identity},arn:aws:ses:{REGION}:{ACCOUNT}:identity/example.com",
        }
    )
    assert _send(granted, "cfo@partner.org", ["cfo@partner.org"]) == "allowed"
    assert _send(granted, "example.com", ["finops@example.com"]) == "allowed"
    # ... under the same conditions: not as another sender, not to anybody else
    assert _send(granted, "cfo@partner.org", ["cfo@partner.org"], sender="cfo@partner.org") == "implicit"
    assert _send(granted, "cfo@partner.org", ["cfo@partner.org", "leak@evil.example"]) == "implicit"
    assert _send(granted, "other.org", ["x@other.org"]) == "implicit"
