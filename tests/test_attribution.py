"""Cost attribution: request metadata over the application profile's tag over the caller's IAM tag, each principal
and profile asked once, every failure named and never fatal. IAM against moto; Bedrock's ListTagsForResource with
botocore's Stubber (moto's Bedrock knows no application inference profiles)."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from lambda_function.config import load_config
from lambda_function.errors import ConfigError
from lambda_function.sources.attribution import UNATTRIBUTED, SourceCounts, TagLookup, attribute_frame

ACCOUNT = "123456789012"  # moto's account
OTHER_ACCOUNT = "210987654321"
PROFILE = f"arn:aws:bedrock:us-west-2:{ACCOUNT}:application-inference-profile/a1b2c3d4e5f6"
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/people/alice"
BOT_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/support-bot/session-1"


class Counting:
    """A client that records each API call made through it."""

    def __init__(self, client):
        self.client = client
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, name):
        method = getattr(self.client, name)

        def call(**params):
            self.calls.append((name, params))
            return method(**params)

        return call


class FakeLookup:
    """Tags by ARN / model id, without AWS: for the pure precedence rules."""

    def __init__(self, principals, profiles):
        self.principals, self.profiles = principals, profiles
        self.asked: list[str] = []

    def principal_tags(self, arn):
        self.asked.append(arn)
        return self.principals.get(arn, {})

    def profile_tags(self, model_id):
        self.asked.append(model_id)
        return self.profiles.get(model_id, {})


def bedrock_client(region="us-west-2"):
    return boto3.client("bedrock", region_name=region, aws_access_key_id="x", aws_secret_access_key="x")


def iam_client():
    return boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def frame(rows, keys=("team",)):
    columns = ["identity_arn", "model_id", "region", *[f"meta:{key}" for key in keys]]
    return pd.DataFrame(rows, columns=columns)


# ---- precedence (pure) ----------------------------------------------------------------------------------------


def test_metadata_wins_over_profile_tag_over_iam_tag():
    # GIVEN alice's IAM tag team=platform, the profile's tag team=chat, and one row for each case
    lookup = FakeLookup({ALICE: {"team": "platform"}}, {PROFILE: {"team": "chat"}})
    usage = frame(
        [
            [ALICE, PROFILE, "us-west-2", "search"],  # all three say something: the metadata
            [ALICE, PROFILE, "us-west-2", ""],  # no metadata: the profile's tag
            [ALICE, SONNET, "us-east-1", ""],  # no metadata, no profile: alice's IAM tag
            [ALICE, SONNET, "us-east-1", "   "],  # blank metadata says nothing: the IAM tag again
            [BOT_SESSION, SONNET, "us-east-1", ""],  # nothing anywhere
        ]
    )
    # WHEN
    attributed, counts = attribute_frame(usage, ["team"], lookup)
    # THEN
    assert list(attributed["team"]) == ["search", "chat", "platform", "platform", ""]
    # 1 row from metadata, 1 from the profile, 2 from IAM, 1 with none: 1 + 1 + 2 + 1 = 5 rows
    assert counts == {"team": SourceCounts(metadata=1, profile=1, iam=2, unattributed=1)}
    # the input is left as it was, and the blank value is what the report shows as "unattributed"
    assert "team" not in usage.columns
    assert UNATTRIBUTED == "unattributed"
    # each distinct identity (2) and model id (2) asked once, not once per row (5)
    assert sorted(lookup.asked) == sorted([ALICE, BOT_SESSION, PROFILE, SONNET])


def test_tags_are_asked_only_for_rows_the_metadata_leaves_open():
    # GIVEN a multi-tenant day: every call of the bot carries its tenant; one of alice's calls carries none
    lookup = FakeLookup({ALICE: {"team": "platform"}}, {})
    tenants = [[BOT_SESSION, SONNET, "us-east-1", f"tenant-{n}"] for n in range(50)]
    usage = frame([*tenants, [ALICE, PROFILE, "us-west-2", "search"], [ALICE, SONNET, "us-east-1", ""]])
    attributed, counts = attribute_frame(usage, ["team"], lookup)
    assert attributed["team"].tolist() == [f"tenant-{n}" for n in range(50)] + ["search", "platform"]
    assert counts == {"team": SourceCounts(metadata=51, iam=1)}
    # THEN only the row without metadata was looked up: its model's profile tags, then alice's IAM tags; the bot's
    # identity and alice's profile, whose every row says its team, were not asked
    assert lookup.asked == [SONNET, ALICE]


def test_each_key_resolves_on_its_own():
    # team from metadata, project from the IAM tag, cost-center from nowhere, on the same row
    lookup = FakeLookup({ALICE: {"team": "platform", "project": "atlas"}}, {})
    usage = frame([[ALICE, SONNET, "us-east-1", "search", "", ""]], keys=("team", "project", "cost-center"))
    attributed, counts = attribute_frame(usage, ["team", "project", "cost-center"], lookup)
    assert attributed.loc[0, ["team", "project", "cost-center"]].tolist() == ["search", "atlas", ""]
    assert counts["team"] == SourceCounts(metadata=1)
    assert counts["project"] == SourceCounts(iam=1)
    assert counts["cost-center"] == SourceCounts(unattributed=1)


def test_an_empty_tag_value_falls_through_to_the_next_source():
    # IAM allows a tag with an empty value; it must not hide the IAM tag under an empty profile tag
    lookup = FakeLookup({ALICE: {"team": "platform"}}, {PROFILE: {"team": ""}})
    attributed, counts = attribute_frame(frame([[ALICE, PROFILE, "us-west-2", None]]), ["team"], lookup)
    assert attributed.loc[0, "team"] == "platform"
    assert counts["team"] == SourceCounts(iam=1)


def test_no_keys_and_no_rows_change_nothing():
    lookup = FakeLookup({}, {})
    usage = frame([[ALICE, SONNET, "us-east-1", ""]])
    attributed, counts = attribute_frame(usage, [], lookup)
    assert counts == {} and lookup.asked == [] and attributed.equals(usage)
    attributed, counts = attribute_frame(frame([]), ["team"], lookup)
    assert list(attributed["team"]) == [] and counts["team"] == SourceCounts()


def test_a_key_named_like_a_usage_column_is_refused():
    usage = frame([[ALICE, SONNET, "us-east-1", "x"]], keys=("region",))
    lookup = FakeLookup({}, {})
    with pytest.raises(ConfigError, match="ATTRIBUTION_KEYS: 'region' is also the name of a usage column"):
        attribute_frame(usage, ["region"], lookup)
    assert lookup.asked == []  # refused before any tag is looked up


# ---- IAM tags (moto) ------------------------------------------------------------------------------------------


@pytest.fixture
def tagged_iam(aws):
    iam = aws.client("iam")
    iam.create_role(
        RoleName="support-bot",
        Path="/service-role/",
        AssumeRolePolicyDocument="{}",
        Tags=[{"Key": "team", "Value": "support"}, {"Key": "project", "Value": "helpdesk"}],
    )
    iam.create_user(UserName="alice", Path="/people/", Tags=[{"Key": "team", "Value": "research"}])
    return iam


def test_a_session_resolves_to_its_role_and_a_user_to_the_user(tagged_iam):
    iam = Counting(tagged_iam)
    lookup = TagLookup(iam, lambda region: None, ACCOUNT)
    assert lookup.principal_tags(BOT_SESSION) == {"team": "support", "project": "helpdesk"}
    # another session of the same role, and the role's own ARN (with its path): the role's tags, asked once
    assert lookup.principal_tags(f"arn:aws:sts::{ACCOUNT}:assumed-role/support-bot/session-2")["team"] == "support"
    assert lookup.principal_tags(f"arn:aws:iam::{ACCOUNT}:role/service-role/support-bot")["team"] == "support"
    assert lookup.principal_tags(ALICE) == {"team": "research"}
    assert lookup.principal_tags(ALICE) == {"team": "research"}
    assert iam.calls == [("list_role_tags", {"RoleName": "support-bot"}), ("list_user_tags", {"UserName": "alice"})]
    assert lookup.failures == []


@pytest.mark.parametrize("partition", ["aws-us-gov", "aws-cn"])
def test_govcloud_and_china_arns_resolve_the_same_way(tagged_iam, partition):
    lookup = TagLookup(tagged_iam, lambda region: None, ACCOUNT)
    assert lookup.principal_tags(f"arn:{partition}:sts::{ACCOUNT}:assumed-role/support-bot/s")["team"] == "support"
    assert lookup.principal_tags(f"arn:{partition}:iam::{ACCOUNT}:user/people/alice") == {"team": "research"}


def test_a_deleted_user_is_a_named_failure_not_an_error(tagged_iam):
    lookup = TagLookup(tagged_iam, lambda region: None, ACCOUNT)
    gone = f"arn:aws:iam::{ACCOUNT}:user/bob"
    assert lookup.principal_tags(gone) == {}
    assert lookup.failures == [f"the IAM tags of user bob ({gone}) could not be read: NoSuchEntity"]


def test_tags_on_several_pages_are_all_read():
    iam = iam_client()
    with Stubber(iam) as stub:
        stub.add_response(
            "list_role_tags",
            {"Tags": [{"Key": "team", "Value": "support"}], "IsTruncated": True, "Marker": "page-2"},
            {"RoleName": "support-bot"},
        )
        stub.add_response(
            "list_role_tags",
            {"Tags": [{"Key": "project", "Value": "helpdesk"}], "IsTruncated": False},
            {"RoleName": "support-bot", "Marker": "page-2"},
        )
        lookup = TagLookup(iam, lambda region: None, ACCOUNT)
        assert lookup.principal_tags(BOT_SESSION) == {"team": "support", "project": "helpdesk"}
        stub.assert_no_pending_responses()


def test_access_denied_is_named_once_and_asked_once():
    iam = iam_client()
    with Stubber(iam) as stub:
        # one answer only: a second ListRoleTags would meet the Stubber's "unexpected call" and add a 2nd failure
        stub.add_client_error("list_role_tags", service_error_code="AccessDenied", http_status_code=403)
        lookup = TagLookup(iam, lambda region: None, ACCOUNT)
        assert lookup.principal_tags(BOT_SESSION) == {}
        assert lookup.principal_tags(BOT_SESSION) == {}
        assert lookup.principal_tags(f"arn:aws:sts::{ACCOUNT}:assumed-role/support-bot/session-2") == {}
        stub.assert_no_pending_responses()
    assert lookup.failures == [f"the IAM tags of role support-bot ({BOT_SESSION}) could not be read: AccessDenied"]


@pytest.mark.parametrize(
    ("arn", "says"),
    [
        (f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/support-bot/s", f"in account {OTHER_ACCOUNT}, not this account"),
        (f"arn:aws:iam::{OTHER_ACCOUNT}:user/alice", f"in account {OTHER_ACCOUNT}, not this account"),
        (f"arn:aws:iam::{ACCOUNT}:root", "is not an IAM user, role or assumed-role session"),
        (f"arn:aws:sts::{ACCOUNT}:federated-user/carol", "is not an IAM user, role or assumed-role session"),
        ("unknown", "is not an IAM user, role or assumed-role session"),
    ],
)
def test_principals_whose_tags_cannot_be_read_here_are_named_without_asking(arn, says):
    raw = iam_client()
    with Stubber(raw):  # nothing stubbed: a call would fail here, never reach the network
        iam = Counting(raw)
        lookup = TagLookup(iam, lambda region: None, ACCOUNT)
        assert lookup.principal_tags(arn) == {}
        assert lookup.principal_tags(arn) == {}
    assert iam.calls == []
    assert len(lookup.failures) == 1 and arn in lookup.failures[0] and says in lookup.failures[0]


# ---- application inference profile tags (Stubber) -------------------------------------------------------------


def test_profile_tags_are_asked_in_the_profile_region_once():
    bedrock = bedrock_client("us-west-2")
    regions: list[str] = []

    def bedrock_for(region):
        regions.append(region)
        return bedrock

    with Stubber(bedrock) as stub:
        stub.add_response(
            "list_tags_for_resource", {"tags": [{"key": "team", "value": "chat"}]}, {"resourceARN": PROFILE}
        )
        lookup = TagLookup(iam_client(), bedrock_for, ACCOUNT)
        assert lookup.profile_tags(PROFILE) == {"team": "chat"}
        assert lookup.profile_tags(PROFILE) == {"team": "chat"}
        # a base model or a system profile has no tags to read, and that is no failure
        assert lookup.profile_tags(SONNET) == {}
        assert lookup.profile_tags("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0") == {}
        stub.assert_no_pending_responses()
    assert regions == ["us-west-2"]
    assert lookup.failures == []


def test_a_profile_that_cannot_be_read_is_named():
    bedrock = bedrock_client()
    with Stubber(bedrock) as stub:
        stub.add_client_error("list_tags_for_resource", service_error_code="ResourceNotFoundException")
        lookup = TagLookup(iam_client(), lambda region: bedrock, ACCOUNT)
        assert lookup.profile_tags(PROFILE) == {}
        assert lookup.profile_tags(PROFILE) == {}
    assert lookup.failures == [
        f"the tags of application inference profile {PROFILE} could not be read: ResourceNotFoundException"
    ]


def test_the_whole_frame_against_iam_and_bedrock(tagged_iam):
    # GIVEN the bot's role tagged team=support/project=helpdesk, alice tagged team=research, the profile team=chat
    bedrock = bedrock_client()
    iam = Counting(tagged_iam)
    usage = frame(
        [
            [BOT_SESSION, PROFILE, "us-west-2", "", ""],
            [BOT_SESSION, SONNET, "us-east-1", "", "atlas"],
            [f"arn:aws:sts::{ACCOUNT}:assumed-role/support-bot/session-2", SONNET, "us-east-1", "", ""],
            [ALICE, SONNET, "us-east-1", "search", ""],
        ],
        keys=("team", "project"),
    )
    with Stubber(bedrock) as stub:
        stub.add_response("list_tags_for_resource", {"tags": [{"key": "team", "value": "chat"}]})
        lookup = TagLookup(iam, lambda region: bedrock, ACCOUNT)
        attributed, counts = attribute_frame(usage, ["team", "project"], lookup)
    # WHEN / THEN: row by row, team = profile, IAM, IAM, metadata; project = IAM, metadata, IAM, (alice has none)
    assert attributed[["team", "project"]].values.tolist() == [
        ["chat", "helpdesk"],
        ["support", "atlas"],
        ["support", "helpdesk"],
        ["search", ""],
    ]
    assert counts == {
        "team": SourceCounts(metadata=1, profile=1, iam=2),
        "project": SourceCounts(metadata=1, iam=2, unattributed=1),
    }
    # three identities, one role among two of them: one ListRoleTags, one ListUserTags
    assert [name for name, _ in iam.calls] == ["list_role_tags", "list_user_tags"]
    assert lookup.failures == []


# ---- the setting ----------------------------------------------------------------------------------------------

GOOD = {"LOG_GROUP_NAMES": "/aws/bedrock/invocations", "REPORT_BUCKET": "acme-reports", "AWS_REGION": "us-east-1"}


def test_attribution_keys_are_read():
    assert load_config(GOOD).attribution_keys == ()
    config = load_config({**GOOD, "ATTRIBUTION_KEYS": " team, project ,cost-center, aws:cloudformation:stack-name"})
    assert config.attribution_keys == ("team", "project", "cost-center", "aws:cloudformation:stack-name")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("team,dépt", "'dépt' is not a tag key"),
        ("team,cost center", "'cost center' is not a tag key"),
        ("team;project", "'team;project' is not a tag key"),
        ("k" * 65, "is not a tag key"),
        ("team,project,team", "'team' repeats 'team'"),
        ("team,Team", "'Team' repeats 'team'"),
        ("a,b,c,d,e,f", "names 6 keys; at most 5"),
    ],
)
def test_bad_attribution_keys_are_refused(value, says):
    with pytest.raises(ConfigError) as caught:
        load_config({**GOOD, "ATTRIBUTION_KEYS": value})
    assert caught.value.variable == "ATTRIBUTION_KEYS"
    assert says in str(caught.value)
