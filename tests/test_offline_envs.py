"""The repository's own environments, validated and planned offline with the example
mlcicd.yaml (single-account placeholder ids): Terraform checks every argument and reference
against the real hashicorp/aws schema, and the real plans are read to check the system.

Planning every root module takes a while (about 5-10 s each, side by side), so the plans
are made once for the module and shared by the checks below.
"""

from __future__ import annotations

import fnmatch
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore import xform_name
from click.testing import CliRunner

from mlcicd.cli import main
from tests.offline_plans import (
    as_list,
    copy_project,
    copy_repository,
    documents,
    offline_environ,
    plan_all,
    planned,
    statements,
)

REPO = Path(__file__).resolve().parent.parent
# Every root module, and each environment whose policies differ (ml serves dev, staging and
# prod; account-roles serves every roles-ENV).
PLANNED = ("devops", "data", "dev", "staging", "prod", "roles-staging", "roles-prod", "roles-data")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A copy of the repository's Terraform, ML code and example config; no credentials,
    no network (a dead proxy), the schema cache of this machine."""
    root = copy_repository(tmp_path_factory.mktemp("repo"))
    with offline_environ():
        yield root


@pytest.fixture(scope="module")
def plans(repo) -> dict[str, dict]:
    from mlcicd import config as configuration
    from mlcicd.offline import preview
    from mlcicd.runtime import Runtime

    config = configuration.load(repo / "mlcicd.yaml")
    runtime = Runtime.from_environ()

    def plan(name: str) -> dict:
        with preview.workspace(config, config.env(name), runtime, sink=lambda line, is_err: None) as ws:
            outcome = ws.plan(repo / "plans" / name)
        return json.loads((outcome.plan_dir / "plan.json").read_text())

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(PLANNED, pool.map(plan, PLANNED), strict=True))


def changes(plan: dict) -> dict[str, dict]:
    return {rc["address"]: rc for rc in plan["resource_changes"]}


def test_validate_all_offline(repo):
    result = CliRunner().invoke(main, ["--config", str(repo / "mlcicd.yaml"), "validate", "--all", "--offline"])
    assert result.exit_code == 0, result.output
    config_envs = ("devops", "data", "dev", "staging", "prod", "roles-dev", "roles-staging", "roles-prod", "roles-data")
    for name in config_envs:
        assert f"{name}: valid: offline preview" in result.output


@pytest.mark.parametrize("env", PLANNED)
def test_every_environment_plans_offline(plans, env):
    plan = plans[env]
    assert plan["format_version"] and plan["terraform_version"]
    managed = [rc for rc in plan["resource_changes"] if rc["mode"] == "managed"]
    assert managed, f"{env} plans no resources"
    assert all(rc["change"]["actions"] == ["create"] for rc in managed)  # a fresh, throw-away state


def pipeline(plans) -> tuple[dict, dict]:
    found = [rc for rc in plans["devops"]["resource_changes"] if rc["type"] == "aws_codepipeline"]
    assert len(found) == 1
    return found[0]["change"]["after"], found[0]


def test_pipeline_has_six_stages_in_order(plans):
    after, _ = pipeline(plans)
    stages = after["stage"]
    assert len(stages) == 6
    kinds = [[(a["category"], a["provider"]) for a in stage["action"]] for stage in stages]
    assert kinds[0] == [("Source", "CodeStarSourceConnection")]
    for index in (1, 2, 3, 5):
        assert {k for k in kinds[index]} == {("Build", "CodeBuild")}, stages[index]["name"]
    assert ("Approval", "Manual") in kinds[4]
    # The action each CodeBuild step runs, in pipeline order.
    actions = [json.loads(a["configuration"]["EnvironmentVariables"])[0]["value"]
               for stage in stages for a in stage["action"] if a["provider"] == "CodeBuild"]
    assert actions == ["build", "train", "test", "plan-prod", "deploy"]


def test_source_action_uses_the_connection_variable(plans):
    after, _ = pipeline(plans)
    source = after["stage"][0]["action"][0]["configuration"]
    assert source["ConnectionArn"].endswith(":connection/offline-preview")
    assert source["FullRepositoryId"] == "acme/ml-models" and source["BranchName"] == "main"
    calls = plans["devops"]["configuration"]["root_module"]["module_calls"]
    module = next(call["module"] for call in calls.values()
                  if any(r["type"] == "aws_codepipeline" for r in call["module"].get("resources", [])))
    resource = next(r for r in module["resources"] if r["type"] == "aws_codepipeline")
    configuration = resource["expressions"]["stage"][0]["action"][0]["configuration"]
    assert "var.connection_arn" in configuration["references"]


def test_every_codebuild_project_uses_the_pipeline_key(plans):
    calls = plans["devops"]["configuration"]["root_module"]["module_calls"]
    projects = [r for call in calls.values() for r in call["module"].get("resources", [])
                if r["type"] == "aws_codebuild_project"]
    assert projects
    # The pipeline module's key: a kms-key module call holding the aws_kms_key.
    pipeline = calls["pipeline"]["module"]
    keys = {f"module.{name}" for name, call in pipeline.get("module_calls", {}).items()
            if any(r["type"] == "aws_kms_key" for r in call["module"].get("resources", []))}
    assert keys == {"module.key"}
    for project in projects:
        references = project["expressions"]["encryption_key"]["references"]
        assert any(ref.split(".arn")[0] in keys for ref in references), references
    planned = [rc for rc in plans["devops"]["resource_changes"] if rc["type"] == "aws_codebuild_project"]
    assert len(planned) >= 5
    assert all(rc["change"]["after_unknown"].get("encryption_key") for rc in planned)  # the key's ARN


def test_sagemaker_pipelines_get_inline_definitions(plans):
    """A definition embeds ARNs a plan on an empty state cannot know, so offline it is
    "known after apply" (tests/test_pipeline_definitions.py evaluates its JSON); when it is
    known it must parse."""
    planned = [rc for env in ("dev", "staging", "prod") for rc in plans[env]["resource_changes"]
               if rc["type"] == "aws_sagemaker_pipeline"]
    assert len(planned) >= 4  # training and inference, in staging and prod at least
    for rc in planned:
        change = rc["change"]
        if change["after_unknown"].get("pipeline_definition"):
            assert not change["after"].get("pipeline_definition_s3_location")
        else:
            assert json.loads(change["after"]["pipeline_definition"])["Steps"]


def policies(value, found: list[dict]) -> None:
    """Every known JSON policy document inside a planned value."""
    if isinstance(value, str) and '"Statement"' in value:
        found.append(json.loads(value))
    elif isinstance(value, dict):
        for item in value.values():
            policies(item, found)
    elif isinstance(value, list):
        for item in value:
            policies(item, found)


def test_no_planned_policy_allows_everything(plans):
    found: list[dict] = []
    for plan in plans.values():
        for rc in plan["resource_changes"]:
            policies(rc["change"]["after"], found)
    assert len(found) >= 10  # aws_iam_policy_document rendered them: they are known offline
    for document in found:
        statements = document["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            if statement.get("Effect") != "Allow":
                continue
            actions = statement.get("Action", [])
            resources = statement.get("Resource", [])
            actions = [actions] if isinstance(actions, str) else actions
            resources = [resources] if isinstance(resources, str) else resources
            assert not ("*" in actions and "*" in resources), statement


def test_review_and_checkov_run_on_an_offline_plan(plans, repo):
    result = CliRunner().invoke(main, ["--config", str(repo / "mlcicd.yaml"), "review",
                                       str(repo / "plans" / "devops"), "--format", "json", "--checkov"])
    assert result.exit_code == 0, result.output
    review = json.loads(result.output[result.output.index("{"):])
    assert review["env"] == "devops" and review["counts"]["create"] >= 20
    assert review["policy"]["error"] is None and review["policy"]["passed"] > 0


# -- IAM, on the planned policy JSON -----------------------------------------------------------


def role_policy(plans, env: str, name: str) -> list[dict]:
    return statements(planned(plans[env], f'module.roles.aws_iam_role_policy.this["{name}"]')["policy"])


def _matches(pattern: str, value: str) -> bool:
    # IAM wildcards: * any run, ? one character; action names are case-insensitive.
    return fnmatch.fnmatchcase(value, pattern)


def allowed_on(policy: list[dict], action: str) -> list[str]:
    """The resource patterns of the Allow statements granting `action` (conditions left aside:
    a grant under a condition still counts as a grant here)."""
    found = []
    for st in policy:
        if st["Effect"] == "Allow" and any(_matches(a.lower(), action.lower()) for a in as_list(st.get("Action"))):
            found += as_list(st.get("Resource"))
    return found


def granted_actions(policy: list[dict]) -> set[str]:
    return {a for st in policy if st["Effect"] == "Allow" for a in as_list(st.get("Action"))}


def identity_policies(plans) -> list[tuple[str, list[dict]]]:
    return [(f"{env}: {rc['address']}", statements(rc["change"]["after"]["policy"]))
            for env, plan in plans.items() for rc in plan["resource_changes"]
            if rc["type"] == "aws_iam_role_policy" and rc["change"]["after"].get("policy")]


def test_no_role_allows_a_whole_service(plans):
    found = identity_policies(plans)
    assert len(found) >= 8  # deploy, runner and plan of three roles-* environments at least
    for where, policy in found:
        wide = [a for a in granted_actions(policy) if a == "*" or a.endswith(":*")]
        assert not wide, f"{where}: {wide}"


# Where parliament's AWS data is older than the documented condition keys it is given.
PARLIAMENT_OUTDATED = {("UNKNOWN_CONDITION_FOR_ACTION", "kms:ResourceAliases")}
# The one permissions-management action left in the identity policies of the roles the pipeline
# assumes: iam:PassRole, on exactly an ML environment's SageMaker execution role and only to
# sagemaker.amazonaws.com. The deploy role passes it when it creates the pipelines (role_arn),
# the execution role passes itself to the jobs its pipelines start; neither works without it.
# Keys, bucket policies and the execution role itself are created by an administrator
# (roles-ENV, modules/ml-baseline), so no role manages them; the data account has no deploy role.
PASSES_EXECUTION_ROLE = {"iam:passrole"}


def _passes_execution_role(rc: dict) -> bool:
    return rc.get("index") == "deploy" or rc["address"].endswith("ml_baseline[0].aws_iam_role_policy.sagemaker")


def _parliament(document: str) -> list:
    from parliament import analyze_policy_string

    return analyze_policy_string(document, include_community_auditors=True).findings


def test_parliament_finds_no_invalid_action_and_permissions_management_only_where_expected(plans):
    """parliament (PyPI) on every planned identity policy and every known resource policy."""
    checked, passing = 0, []
    for env, plan in plans.items():
        for rc in plan["resource_changes"]:
            for where, document in documents(rc["change"]["after"], f"{env}: {rc['address']}"):
                if where.endswith(".assume_role_policy"):
                    continue  # a trust policy has no Resource; parliament reads identity policies
                checked += 1
                identity = rc["type"] == "aws_iam_role_policy"
                findings = _parliament(document)
                invalid = [f"{f.issue} {f.detail}" for f in findings
                           if f.issue in ("UNKNOWN_ACTION", "UNKNOWN_PREFIX", "MALFORMED", "MALFORMED_JSON")]
                assert not invalid, f"{where}: {invalid}"
                if not identity:
                    continue  # resource policies: their conditions are checked by AWS's examples, not here
                odd = [f"{f.issue} {f.detail}" for f in findings
                       if f.issue in ("RESOURCE_MISMATCH", "MISMATCHED_TYPE", "UNKNOWN_CONDITION_FOR_ACTION")
                       and not any(issue == f.issue and key in str(f.detail) for issue, key in PARLIAMENT_OUTDATED)]
                assert not odd, f"{where}: {odd}"
                managing = {a for f in findings if f.issue == "PERMISSIONS_MANAGEMENT_ACTIONS"
                            for a in f.location["actions"]}
                expected = PASSES_EXECUTION_ROLE if _passes_execution_role(rc) else set()
                assert managing == expected, where
                if expected:
                    passing.append(where)
            if rc["type"] == "aws_kms_key" and rc["change"]["after"].get("policy"):
                # Beyond the key's documented root statement, no key policy manages permissions.
                rest = [st for st in statements(rc["change"]["after"]["policy"])
                        if st.get("Sid") != "AccountAdministers"]
                leftover = [f for f in _parliament(json.dumps({"Version": "2012-10-17", "Statement": rest}))
                            if f.issue == "PERMISSIONS_MANAGEMENT_ACTIONS"] if rest else []
                assert not leftover, rc["address"]
    assert checked >= 12
    # Every planned ML environment's deploy and execution role policies were known, hence checked.
    assert len(passing) == 2 * len({"roles-dev", "roles-staging", "roles-prod"} & set(plans)), passing


def test_the_permissions_management_check_catches_a_wildcard():
    findings = _parliament(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:us-east-1:111111111111:key/*"}]}))
    assert "PERMISSIONS_MANAGEMENT_ACTIONS" in {f.issue for f in findings}
    findings = _parliament(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:DeleteBucketOwnershipControls", "Resource": "*"}]}))
    assert "UNKNOWN_ACTION" in {f.issue for f in findings}  # not an IAM action: Put... covers it


def _calls_in(source: str) -> dict[str, set[str]]:
    """The boto3 operations mlcicd/sagemaker.py calls, as IAM actions, by service."""
    from botocore.session import get_session

    session = get_session()
    names = {svc: {xform_name(op): op for op in session.get_service_model(svc).operation_names}
             for svc in ("sagemaker", "s3")}
    found: dict[str, set[str]] = {"sagemaker": set(), "s3": set()}
    for method in re.findall(r"\bsm\.([a-z_0-9]+)\(", source):
        found["sagemaker"].add(names["sagemaker"][method])
    for method in re.findall(r'\bs3\.(?:get_paginator\("([a-z_0-9]+)"\)|([a-z_0-9]+)\()', source):
        op = names["s3"][method[0] or method[1]]
        found["s3"].add(S3_ACTIONS.get(op, op))
    return found


# S3 operations whose IAM action has another name.
S3_ACTIONS = {"ListObjectsV2": "ListBucket", "HeadObject": "GetObject"}


@pytest.mark.parametrize("env", ["roles-staging", "roles-prod"])
def test_runner_role_allows_exactly_the_calls_run_pipeline_makes(plans, env):
    calls = _calls_in((REPO / "mlcicd" / "sagemaker.py").read_text())
    assert {"DescribeProcessingJob", "DescribeTransformJob", "StartPipelineExecution"} <= calls["sagemaker"]
    policy = role_policy(plans, env, "pipeline-runner")
    expected = {f"sagemaker:{op}" for op in calls["sagemaker"]} | {f"s3:{op}" for op in calls["s3"]}
    expected.add("kms:Decrypt")  # the predictions are encrypted with the data key
    assert granted_actions(policy) == expected


def test_prod_runner_may_read_staging_model_packages_on_both_sides(plans):
    staging_package = "arn:aws:sagemaker:us-east-1:111111111111:model-package/mlops-demo-staging-models/3"
    prod_runner = "arn:aws:iam::111111111111:role/mlops-demo-prod-pipeline-runner"
    identity = allowed_on(role_policy(plans, "roles-prod", "pipeline-runner"), "sagemaker:DescribeModelPackage")
    assert any(_matches(r, staging_package) for r in identity)
    [group_policy] = statements(planned(plans["staging"], "module.ml.aws_sagemaker_model_package_group_policy.this[0]")
                                ["resource_policy"])
    assert as_list(group_policy["Action"]) == ["sagemaker:DescribeModelPackage"]
    assert any(_matches(r, staging_package) for r in as_list(group_policy["Resource"]))
    assert group_policy["Condition"]["ArnEquals"]["aws:PrincipalArn"] == prod_runner
    # Staging's own runner reads only staging's packages.
    staging_runner = allowed_on(role_policy(plans, "roles-staging", "pipeline-runner"),
                                "sagemaker:DescribeModelPackage")
    assert not any(_matches(r, staging_package.replace("staging", "prod")) for r in staging_runner)


def test_sagemaker_jobs_encrypt_with_the_data_key_arn_not_its_alias(plans):
    definitions = [rc["change"]["after"].get("pipeline_definition") for env in ("staging", "prod")
                   for rc in plans[env]["resource_changes"] if rc["type"] == "aws_sagemaker_pipeline"]
    calls = plans["staging"]["configuration"]["root_module"]["module_calls"]["ml"]["module"]["module_calls"]
    references = calls["definitions"]["expressions"]["output_kms_key_arn"]["references"]
    assert "data.aws_kms_key.data.arn" in references
    for definition in filter(None, definitions):
        assert ":alias/" not in definition


# Verbs of actions that create, change or delete something.
WRITE_VERBS = ("Abort", "Add", "Associate", "Attach", "Cancel", "Complete", "Copy", "Create", "Delete", "Deregister",
               "Detach", "Disable", "Disassociate", "Enable", "Import", "Invoke", "Modify", "Pass", "Publish", "Put",
               "Register", "Remove", "Replace", "Reset", "Restore", "Retire", "Revoke", "Rotate", "Schedule", "Send",
               "Set", "Start", "Stop", "Tag", "Untag", "Update", "Upload")


def write_grants(policy: list[dict]) -> dict[str, list[str]]:
    """Every write-ish action of every service the policy names (from botocore's service models),
    with the resources the policy allows it on."""
    from botocore.session import get_session

    session = get_session()
    services = {a.split(":")[0] for a in granted_actions(policy)}
    assert "*" not in services
    grants = {}
    for service in sorted(services):
        operations = set(session.get_service_model(service).operation_names)
        if service == "iam":
            operations.add("PassRole")  # an IAM action with no API operation of its own
        for op in sorted(operations):
            if op.startswith(WRITE_VERBS):
                resources = allowed_on(policy, f"{service}:{op}")
                if resources:
                    grants[f"{service}:{op}"] = resources
    return grants


@pytest.mark.parametrize("env", ["roles-staging", "roles-prod"])
def test_ml_deploy_role_writes_only_what_the_ml_environment_declares(plans, env):
    """Code objects, the SageMaker pipelines and model package group, and passing the execution
    role: no key, bucket or IAM role management (ml-baseline's, applied by an administrator)."""
    target = env.removeprefix("roles-")
    objects = f"arn:aws:s3:::mlops-demo-{target}-code-111111111111/*"
    grants = write_grants(role_policy(plans, env, "deploy"))
    by_service: dict[str, set[str]] = {}
    for action in grants:
        by_service.setdefault(action.split(":")[0], set()).add(action.split(":")[1])
    assert set(by_service) == {"iam", "s3", "sagemaker"}
    assert by_service["iam"] == {"PassRole"}
    # (s3:DeleteObjectVersion, an IAM action with no operation of its own, is granted on the same objects.)
    assert by_service["s3"] == {"DeleteObject", "PutObject", "PutObjectTagging"}
    assert all(grants[f"s3:{op}"] == [objects] for op in by_service["s3"])
    assert by_service["sagemaker"] == {
        "AddTags", "CreateModelPackageGroup", "CreatePipeline", "DeleteModelPackageGroup",
        "DeleteModelPackageGroupPolicy", "DeletePipeline", "DeleteTags", "PutModelPackageGroupPolicy", "UpdatePipeline"}


@pytest.mark.parametrize("env", ["roles-staging", "roles-prod"])
def test_the_only_iam_action_left_passes_the_execution_role_to_sagemaker(plans, env):
    target = env.removeprefix("roles-")
    execution_role = f"arn:aws:iam::111111111111:role/mlops-demo-{target}-sagemaker"
    [policy_address] = [rc["address"] for rc in plans[env]["resource_changes"]
                        if rc["address"].endswith("ml_baseline[0].aws_iam_role_policy.sagemaker")]
    for policy in (role_policy(plans, env, "deploy"), statements(planned(plans[env], policy_address)["policy"])):
        iam = [st for st in policy if any(a.startswith("iam:") for a in as_list(st["Action"]))]
        assert [as_list(st["Action"]) for st in iam] == [["iam:PassRole"]]
        assert as_list(iam[0]["Resource"]) == [execution_role]
        assert iam[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_the_data_account_has_no_deploy_role(plans):
    """The data environment is nothing but a key, buckets and their policies: an administrator
    applies it, and roles-data keeps only the read-only plan role (drift, pull-request previews)."""
    roles = {planned(plans["roles-data"], rc["address"])["name"] for rc in plans["roles-data"]["resource_changes"]
             if rc["type"] == "aws_iam_role"}
    assert roles == {"mlops-demo-data-plan"}


@pytest.mark.parametrize("env", ["roles-staging", "roles-data"])
def test_plan_role_writes_nothing_but_the_state_lock(plans, env):
    target = env.removeprefix("roles-")
    state = "arn:aws:s3:::mlops-demo-tfstate-111111111111-us-east-1/{}/terraform.tfstate"
    # Its environment's state, and its account's roles-ENV state: drift --all plans both with it.
    locks = [state.format(name) + ".tflock" for name in (target, f"roles-{target}")]
    grants = write_grants(role_policy(plans, env, "plan"))
    assert {action: sorted(arns) for action, arns in grants.items()} == {
        "s3:DeleteObject": sorted(locks), "s3:PutObject": sorted(locks)}
    # It reads what a plan reads: the states, and the environment's own resources.
    policy = role_policy(plans, env, "plan")
    for lock in locks:
        assert any(_matches(r, lock.removesuffix(".tflock")) for r in allowed_on(policy, "s3:GetObject"))
    assert allowed_on(policy, "kms:Decrypt")


@pytest.mark.parametrize("env", ["roles-staging", "roles-data"])
def test_plan_role_can_read_back_the_roles_its_roles_environment_manages(plans, env):
    # Planning roles-ENV refreshes its roles and their inline policies; the plan role may read
    # exactly those roles.
    managed = [planned(plans[env], rc["address"]) for rc in plans[env]["resource_changes"]
               if rc["type"] == "aws_iam_role"]
    arns = {f"arn:aws:iam::111111111111:role/{role['name']}" for role in managed}
    policy = role_policy(plans, env, "plan")
    for action in ("iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"):
        readable = allowed_on(policy, action)
        assert all(any(_matches(r, arn) for r in readable) for arn in arns), (action, arns, readable)


def test_write_grants_see_a_wildcard_and_a_verb_in_any_service():
    bucket = "arn:aws:s3:::b/*"
    policy = [{"Effect": "Allow", "Action": ["s3:Put*", "sagemaker:Describe*"], "Resource": bucket},
              {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/r"}]
    grants = write_grants(policy)
    assert grants["s3:PutBucketPolicy"] == [bucket] and grants["iam:PassRole"] == ["arn:aws:iam::1:role/r"]
    assert not any(a.startswith("sagemaker:") for a in grants)


# -- partitions ----------------------------------------------------------------------------------


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_arns_take_the_partition_of_the_region(tmp_path_factory):
    """The same modules in GovCloud: every planned ARN is an arn:aws-us-gov: one."""
    text = (REPO / "mlcicd.yaml").read_text().replace("region: us-east-1", "region: us-gov-west-1")
    config = copy_project(tmp_path_factory.mktemp("govcloud"), text)
    found = plan_all(config, ["data", "roles-prod"])
    arns = [s for plan in found.values() for rc in plan["resource_changes"]
            for s in _strings(rc["change"]["after"]) if "arn:" in s]
    assert len(arns) >= 10
    assert not [s for s in arns if "arn:aws:" in s]
    assert any("arn:aws-us-gov:iam::111111111111:role/mlops-demo-prod-pipeline-runner" in s for s in arns)


def test_data_key_lets_the_ml_deploy_and_plan_roles_resolve_its_alias(plans):
    """Both sides of the cross-account DescribeKey behind data.aws_kms_key: the data key's policy
    names the roles, and their identity policies allow it."""
    policy = statements(planned(plans["data"], "module.data.module.key.aws_kms_key.this")["policy"])
    describing = {arn for st in policy if "kms:DescribeKey" in as_list(st["Action"])
                  for arn in as_list(st.get("Condition", {}).get("ArnEquals", {}).get("aws:PrincipalArn"))}
    key = "arn:aws:kms:us-east-1:111111111111:key/0f1e2d3c-aaaa-bbbb-cccc-111122223333"
    for env in ("dev", "staging", "prod"):
        for role in ("deploy", "plan"):
            assert f"arn:aws:iam::111111111111:role/mlops-demo-{env}-{role}" in describing
    for env in ("roles-staging", "roles-prod"):
        for role in ("deploy", "plan"):
            granted = allowed_on(role_policy(plans, env, role), "kms:DescribeKey")
            assert any(_matches(r, key) for r in granted), (env, role)


def test_runners_read_predictions_on_both_sides(plans):
    """The Test action checks the predictions in the data account: the runner's identity policy
    and the predictions bucket's policy both allow it, and no other role reads them."""
    bucket = 'module.data.module.bucket["predictions"].aws_s3_bucket_policy.this'
    policy = statements(planned(plans["data"], bucket)["policy"])
    [read] = [st for st in policy if st.get("Sid") == "AllowRead"]
    readers = as_list(read["Condition"]["ArnEquals"]["aws:PrincipalArn"])
    assert sorted(readers) == [f"arn:aws:iam::111111111111:role/mlops-demo-{env}-pipeline-runner"
                               for env in ("prod", "staging")]
    for env in ("staging", "prod"):
        obj = f"arn:aws:s3:::mlops-demo-predictions-111111111111/{env}/part-0.csv"
        assert any(_matches(r, obj) for r in as_list(read["Resource"]))
        granted = allowed_on(role_policy(plans, f"roles-{env}", "pipeline-runner"), "s3:GetObject")
        assert any(_matches(r, obj) for r in granted)
        other = obj.replace(f"/{env}/", "/dev/")
        assert not any(_matches(r, other) for r in granted)  # a runner reads its own environment's only


@pytest.mark.parametrize("env", ["roles-staging", "roles-data"])
def test_only_the_plan_role_trusts_the_read_only_projects(plans, env):
    # A pull request's code runs as the pr-preview role: it may become the plan role, never a
    # role that deploys or runs pipelines.
    def trusted(role: str) -> set[str]:
        policy = statements(planned(plans[env], f'module.roles.aws_iam_role.this["{role}"]')["assume_role_policy"])
        return {arn for s in policy for arn in as_list(s["Condition"]["ArnEquals"]["aws:PrincipalArn"])}

    codebuild, preview, drift = (f"arn:aws:iam::111111111111:role/mlops-demo-{n}"
                                 for n in ("codebuild", "pr-preview", "drift"))
    assert trusted("plan") == {codebuild, preview, drift}
    if env != "roles-data":  # the data account has neither a deploy role nor SageMaker pipelines
        assert trusted("deploy") == {codebuild}
        assert trusted("pipeline-runner") == {codebuild}
