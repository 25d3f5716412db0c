"""The evaluator of tests/iam_eval.py denies what AWS denies. Each case restates a rule of AWS's
policy evaluation logic and policy grammar (IAM User Guide: "Policy evaluation logic", "IAM JSON
policy elements", "Condition operators", "Cross-account policy evaluation logic")."""

from __future__ import annotations

import pytest

from tests.iam_eval import ABSENT, UNKNOWN_VALUE, Request, decide

ROLE = "arn:aws:iam::111111111111:role/runner"
OTHER = "arn:aws:iam::222222222222:role/reader"
OBJECT = "arn:aws:s3:::data-bucket/predictions/part-0.csv"


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def verdict(identity: list[dict], action: str = "s3:GetObject", arn: str = OBJECT, principal: str = ROLE,
            context: dict | None = None, resource_policy: dict | None = None, **kwargs) -> str:
    return decide(Request(action, arn, principal, context or {}), identity, resource_policy, **kwargs).decision


def test_nothing_allowed_is_an_implicit_deny():
    assert verdict([]) == "implicit-deny"
    assert verdict([policy(allow("s3:PutObject", OBJECT))]) == "implicit-deny"


def test_explicit_deny_beats_any_allow():
    assert verdict([policy(allow("s3:*", "*"), deny("s3:GetObject", "arn:aws:s3:::data-bucket/*"))]) == "explicit-deny"
    # in another policy of the same principal too
    assert verdict([policy(allow("*", "*")), policy(deny("s3:Get*"))]) == "explicit-deny"


def test_actions_match_case_insensitively_with_wildcards():
    assert verdict([policy(allow("S3:getobject", OBJECT))]) == "allow"
    assert verdict([policy(allow("s3:Get*", OBJECT))]) == "allow"
    assert verdict([policy(allow("s3:Get?bject", OBJECT))]) == "allow"
    assert verdict([policy(allow("s3:List*", OBJECT))]) == "implicit-deny"
    assert verdict([policy(allow("sagemaker:GetObject", OBJECT))]) == "implicit-deny"


def test_resources_match_case_sensitively_with_wildcards_across_separators():
    assert verdict([policy(allow("s3:GetObject", "arn:aws:s3:::data-bucket/*"))]) == "allow"
    assert verdict([policy(allow("s3:GetObject", "arn:aws:s3:::Data-Bucket/*"))]) == "implicit-deny"
    assert verdict([policy(allow("s3:GetObject", "arn:aws:s3:::data-bucket"))]) == "implicit-deny"  # bucket ≠ object
    assert verdict([policy(allow("s3:GetObject", "arn:aws:s3:::data-*"))]) == "allow"  # * spans "/"
    sm = "arn:aws:sagemaker:us-east-1:111111111111:pipeline/demo-staging-training/execution/abc"
    assert verdict([policy(allow("sagemaker:DescribePipelineExecution",
                                 "arn:aws:sagemaker:us-east-1:111111111111:pipeline/demo-staging-*"))],
                   "sagemaker:DescribePipelineExecution", sm) == "allow"
    assert verdict([policy(allow("sagemaker:DescribePipelineExecution",
                                 "arn:aws:sagemaker:us-east-1:111111111111:pipeline/demo-prod-*"))],
                   "sagemaker:DescribePipelineExecution", sm) == "implicit-deny"


def test_not_action_allows_everything_else_and_denies_what_it_names():
    assert verdict([policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})]) == "allow"
    assert verdict([policy({"Effect": "Allow", "NotAction": ["s3:*"], "Resource": "*"})]) == "implicit-deny"
    everything_but_s3 = {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}
    assert verdict([policy(allow("*"), everything_but_s3)]) == "allow"
    assert verdict([policy(allow("*"), everything_but_s3)], "kms:Decrypt") == "explicit-deny"


def test_not_resource():
    other_buckets = {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::data-bucket/*"]}
    assert verdict([policy(allow("s3:*"), other_buckets)]) == "allow"
    assert verdict([policy(allow("s3:*"), other_buckets)], arn="arn:aws:s3:::elsewhere/x") == "explicit-deny"
    assert verdict([policy({"Effect": "Allow", "Action": "s3:GetObject",
                            "NotResource": "arn:aws:s3:::data-bucket/*"})]) == "implicit-deny"


def test_an_unmet_allow_condition_is_an_implicit_not_an_explicit_deny():
    tls = {"Bool": {"aws:SecureTransport": "true"}}
    assert verdict([policy(allow("s3:GetObject", Condition=tls))], context={"aws:SecureTransport": False}) \
        == "implicit-deny"
    assert verdict([policy(allow("s3:GetObject", Condition=tls))], context={"aws:SecureTransport": True}) == "allow"
    # and a Deny whose condition does not hold does not deny
    no_tls = {"Bool": {"aws:SecureTransport": "false"}}
    assert verdict([policy(allow("s3:*"), deny("s3:*", Condition=no_tls))], context={"aws:securetransport": True}) \
        == "allow"


def test_conditions_it_cannot_evaluate_are_reported_not_passed():
    via_s3 = {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    result = decide(Request("kms:Decrypt", "arn:aws:kms:us-east-1:111111111111:key/k", ROLE),
                    [policy(allow("kms:Decrypt", Condition=via_s3))])
    assert result.decision == "unknown"
    assert any("kms:ViaService" in reason for reason in result.reasons)
    numeric = {"NumericLessThan": {"s3:max-keys": "10"}}
    result = decide(Request("s3:ListBucket", "arn:aws:s3:::data-bucket", ROLE, {"s3:max-keys": "5"}),
                    [policy(allow("s3:ListBucket", Condition=numeric))])
    assert result.decision == "unknown" and "NumericLessThan is not implemented" in result.reasons[0]
    # a Deny it cannot evaluate leaves the answer open too, even beside a plain Allow
    assert verdict([policy(allow("s3:*"), deny("s3:*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))],
                   context={"aws:SourceIp": "10.1.2.3"}) == "unknown"


def test_values_an_offline_plan_does_not_know_are_reported():
    assert verdict([policy(allow("s3:GetObject", [UNKNOWN_VALUE]))]) == "unknown"
    # a known match elsewhere still decides
    assert verdict([policy(allow("s3:GetObject", [UNKNOWN_VALUE, "arn:aws:s3:::data-bucket/*"]))]) == "allow"
    assert verdict([policy(allow("s3:PutObject", [UNKNOWN_VALUE]))]) == "implicit-deny"  # other action


def test_condition_operators():
    def check(condition: dict, context: dict) -> str:
        return verdict([policy(allow("s3:GetObject", Condition=condition))], context=context)

    assert check({"StringLike": {"aws:PrincipalTag/team": "ml-*"}}, {"aws:PrincipalTag/team": "ml-ops"}) == "allow"
    assert check({"StringLike": {"aws:PrincipalTag/team": "ml-*"}}, {"aws:PrincipalTag/team": "ML-ops"}) \
        == "implicit-deny"
    assert check({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "ml"}}, {"aws:PrincipalTag/team": "ML"}) \
        == "allow"
    assert check({"StringNotEquals": {"aws:PrincipalTag/team": "ml"}}, {"aws:PrincipalTag/team": "web"}) == "allow"
    # a missing key: positive operators fail, negated ones and ...IfExists hold
    assert check({"StringEquals": {"aws:PrincipalTag/team": "ml"}}, {"aws:PrincipalTag/team": ABSENT}) \
        == "implicit-deny"
    assert check({"StringNotEquals": {"aws:PrincipalTag/team": "ml"}}, {"aws:PrincipalTag/team": ABSENT}) == "allow"
    assert check({"StringEqualsIfExists": {"aws:PrincipalTag/team": "ml"}}, {"aws:PrincipalTag/team": ABSENT}) \
        == "allow"
    assert check({"Null": {"aws:PrincipalTag/team": "true"}}, {"aws:PrincipalTag/team": ABSENT}) == "allow"
    # ArnLike: each ARN part on its own, so * does not cross ":"
    assert check({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/runner"}}, {}) == "allow"
    assert check({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*"}}, {}) == "implicit-deny"
    assert check({"ArnEquals": {"aws:PrincipalArn": OTHER}}, {}) == "implicit-deny"
    # multi-valued keys
    aliases = {"kms:ResourceAliases": ("alias/a", "alias/data")}
    assert check({"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/data"}}, aliases) == "allow"
    assert check({"ForAllValues:StringEquals": {"kms:ResourceAliases": "alias/data"}}, aliases) == "implicit-deny"
    # every operator and every key must hold
    both = {"StringEquals": {"aws:PrincipalTag/team": "ml", "aws:PrincipalTag/env": "prod"}}
    assert check(both, {"aws:PrincipalTag/team": "ml", "aws:PrincipalTag/env": "dev"}) == "implicit-deny"


BUCKET_POLICY_FOR_OTHER = policy({"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "s3:GetObject",
                                  "Resource": "arn:aws:s3:::data-bucket/*"})


def test_cross_account_needs_both_the_identity_and_the_resource_policy():
    mine = [policy(allow("s3:GetObject", "arn:aws:s3:::data-bucket/*"))]
    assert verdict(mine, principal=OTHER, resource_account="111111111111") == "implicit-deny"
    assert verdict([], principal=OTHER, resource_account="111111111111",
                   resource_policy=BUCKET_POLICY_FOR_OTHER) == "implicit-deny"
    assert verdict(mine, principal=OTHER, resource_account="111111111111", resource_policy=BUCKET_POLICY_FOR_OTHER) \
        == "allow"
    to_account = policy({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data-bucket/*"})
    assert verdict(mine, principal=OTHER, resource_account="111111111111", resource_policy=to_account) == "allow"


def test_same_account_either_policy_suffices_unless_the_resource_policy_is_required():
    naming_role = policy({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject",
                          "Resource": "arn:aws:s3:::data-bucket/*"})
    assert verdict([], resource_account="111111111111", resource_policy=naming_role) == "allow"
    to_account = policy({"Effect": "Allow", "Principal": {"AWS": "111111111111"}, "Action": "s3:GetObject",
                         "Resource": "*"})
    assert verdict([], resource_account="111111111111", resource_policy=to_account) == "implicit-deny"
    # a role's trust policy must allow AssumeRole even within one account
    target = "arn:aws:iam::111111111111:role/deploy"
    may_assume = [policy(allow("sts:AssumeRole", target))]
    trust_nobody = policy({"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"},
                           "Action": "sts:AssumeRole"})
    assert verdict(may_assume, "sts:AssumeRole", target, resource_policy=trust_nobody, resource_required=True) \
        == "implicit-deny"
    trust_account = policy({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                            "Action": "sts:AssumeRole",
                            "Condition": {"ArnEquals": {"aws:PrincipalArn": ROLE}}})
    trusted = {"resource_policy": trust_account, "resource_required": True}
    assert verdict(may_assume, "sts:AssumeRole", target, **trusted) == "allow"
    assert verdict([], "sts:AssumeRole", target, **trusted) == "implicit-deny"


def test_a_resource_policy_deny_for_everyone_denies():
    tls_only = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::data-bucket/*",
                       "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    mine = [policy(allow("s3:GetObject", "*"))]
    assert verdict(mine, resource_policy=tls_only, context={"aws:SecureTransport": False}) == "explicit-deny"
    assert verdict(mine, resource_policy=tls_only, context={"aws:SecureTransport": True}) == "allow"


@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data-bucket/${aws:username}/*"},
])
def test_policy_variables_are_not_guessed(statement):
    assert verdict([policy(statement)]) == "unknown"


def test_a_resource_policy_principal_the_plan_does_not_know_is_reported():
    unknown_reader = policy({"Effect": "Allow", "Principal": {"AWS": [UNKNOWN_VALUE]}, "Action": "s3:GetObject",
                             "Resource": "arn:aws:s3:::data-bucket/*"})
    mine = [policy(allow("s3:GetObject", "arn:aws:s3:::data-bucket/*"))]
    assert verdict(mine, principal=OTHER, resource_account="111111111111", resource_policy=unknown_reader) == "unknown"


def test_not_principal_is_reported_not_guessed():
    everyone_but_admins = policy({"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::111111111111:role/admin"},
                                  "Action": "s3:*", "Resource": "arn:aws:s3:::data-bucket/*"})
    mine = [policy(allow("s3:GetObject", "arn:aws:s3:::data-bucket/*"))]
    assert verdict(mine, resource_account="111111111111", resource_policy=everyone_but_admins) == "unknown"
