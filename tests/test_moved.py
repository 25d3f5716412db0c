"""A deployment made from the first release upgrades in place: today's roots, planned by the real
bundled Terraform over a state that holds the first release's addresses (fixtures/moved), move
every resource they still manage instead of destroying and recreating it.

The state is a version-4 state file written where the offline preview keeps its throw-away local
state; the stand-in provider reads a resource back as the state has it, so Terraform itself
applies the roots' `moved` blocks and reports each move as `previous_address` in plan.json.
Regenerate the fixture with tests/fixtures/moved/generate.py.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.offline_plans import copy_repository, offline_environ

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "moved" / "old_addresses.json"
PROVIDER = 'provider["registry.terraform.io/hashicorp/aws"]'

# Moved into roles-ENV (modules/ml-baseline), another state, which a `moved` block cannot reach:
# the ML environments' key, code bucket (and its settings) and SageMaker execution role. The ml
# root's `removed` blocks make Terraform forget them, never destroy them.
ELSEWHERE = ("module.ml.aws_kms_key.", "module.ml.aws_kms_alias.", "module.ml.module.code_bucket.",
             "module.ml.aws_iam_role.sagemaker", "module.ml.aws_iam_role_policy.sagemaker")
# Dropped on purpose, so an upgrade destroys them: the data account has no SageMaker pipelines,
# account-roles gives a pipeline runner to the ML environments only, and data is applied by its
# administrator, so it has no deploy role.
DROPPED = {"roles-data": ("module.roles.aws_iam_role.runner", "module.roles.aws_iam_role_policy.runner",
                          "module.roles.aws_iam_role.deploy", "module.roles.aws_iam_role_policy.deploy")}

pytestmark = pytest.mark.slow


def old_resources() -> dict[str, list[dict]]:
    return json.loads(FIXTURE.read_text())["environments"]


def checked(env: str, address: str) -> bool:
    return not address.startswith(ELSEWHERE) and address not in DROPPED.get(env, ())


def state_file(resources: list[dict]) -> dict:
    """A state as Terraform writes it after applying the first release: every instance, its
    identifying attributes (the rest unknown to the test, so null)."""
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for r in resources:
        instance = {"schema_version": 0, "attributes": r["identity"], "sensitive_attributes": []}
        if r["index"] is not None:
            instance["index_key"] = r["index"]
        grouped[(r["module"], r["type"], r["name"])].append(instance)
    return {
        "version": 4, "terraform_version": "1.15.0", "serial": 1, "lineage": str(uuid.uuid4()), "outputs": {},
        "resources": [
            {**({"module": module} if module else {}), "mode": "managed", "type": type_, "name": name,
             "provider": PROVIDER, "instances": instances}
            for (module, type_, name), instances in grouped.items()
        ],
        "check_results": None,
    }


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> dict[str, dict]:
    """plan.json of every environment of the example config, planned over its first-release state."""
    from mlcicd import config as configuration
    from mlcicd.offline import preview
    from mlcicd.runtime import Runtime

    repo = copy_repository(tmp_path_factory.mktemp("repo"))
    old = old_resources()
    with offline_environ():
        config = configuration.load(repo / "mlcicd.yaml")
        runtime = Runtime.from_environ()

        def plan(name: str) -> dict:
            with preview.workspace(config, config.env(name), runtime, sink=lambda line, is_err: None) as ws:
                # Initialised before the state exists: `init` over a state that names hashicorp/aws
                # asks the registry for it despite the dev override (hashicorp/terraform#27459).
                ws.init()
                (ws.scratch / "offline.tfstate").write_text(json.dumps(state_file(old[name])))
                ws.init = lambda **kwargs: True
                outcome = ws.plan(repo / "plans" / name)
            return json.loads((outcome.plan_dir / "plan.json").read_text())

        with ThreadPoolExecutor(max_workers=2) as pool:
            return dict(zip(old, pool.map(plan, old), strict=True))


def where_it_went(plan: dict, address: str) -> list[dict]:
    """The planned changes of the instance the state held at `address`: at the same address, or
    at the one a `moved` block took it to."""
    return [rc for rc in plan["resource_changes"] if rc.get("previous_address", rc["address"]) == address]


@pytest.mark.parametrize("env", list(old_resources()))
def test_first_release_resources_are_kept(plans, env):
    plan = plans[env]
    lost = []
    for old in old_resources()[env]:
        if not checked(env, old["address"]):
            continue
        found = where_it_went(plan, old["address"])
        if len(found) != 1:
            lost.append(f"{old['address']}: {len(found)} planned changes")
            continue
        [rc] = found
        actions = rc["change"]["actions"]
        if "create" in actions or "delete" in actions:
            lost.append(f"{old['address']} -> {rc['address']}: {actions}")
            continue
        after = rc["change"]["after"]
        for key, value in old["identity"].items():
            if after.get(key) != value:
                lost.append(f"{old['address']} -> {rc['address']}: {key} {value!r} becomes {after.get(key)!r}")
    assert not lost, f"{env}: upgrading from the first release would replace:\n" + "\n".join(lost)


def test_moves_are_reported_as_moves(plans):
    """The refactored addresses really are moves Terraform made, one from each kind of refactoring,
    so the upgrade's plan shows them to its reviewer as moved; and nothing moves from an address
    the first release never had."""
    moved = {env: {rc["previous_address"]: rc["address"] for rc in plan["resource_changes"] if "previous_address" in rc}
             for env, plan in plans.items()}
    for env, before, after in (
        ("devops", "module.pipeline.aws_kms_key.this", "module.pipeline.module.key.aws_kms_key.this"),
        ("data", "module.data.aws_kms_alias.this", "module.data.module.key.aws_kms_alias.this"),
        ("roles-prod", "module.roles.aws_iam_role.runner", 'module.roles.aws_iam_role.this["pipeline-runner"]'),
        ("staging", "module.ml.aws_sagemaker_pipeline.training[0]",
         'module.ml.aws_sagemaker_pipeline.this["training"]'),
    ):
        assert moved[env].get(before) == after, env
    for env, moves in moved.items():
        assert set(moves) <= {r["address"] for r in old_resources()[env]}, env


@pytest.mark.parametrize("env", list(DROPPED))
def test_dropped_resources_are_destroyed(plans, env):
    for address in DROPPED[env]:
        actions = [rc["change"]["actions"] for rc in where_it_went(plans[env], address)]
        assert actions == [["delete"]], f"{env}: {address} is kept now ({actions}): remove it from DROPPED"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_what_moved_to_roles_env_is_forgotten_not_destroyed(plans, env):
    """The key, code bucket and execution role an ML environment made before roles-ENV took them
    over stay in the account: the upgrade's plan forgets each one, and destroys none."""
    moved_out = [r["address"] for r in old_resources()[env] if r["address"].startswith(ELSEWHERE)]
    assert len(moved_out) >= 5, moved_out  # the key, its alias, the bucket, the role, its policy at least
    for address in moved_out:
        actions = [rc["change"]["actions"] for rc in where_it_went(plans[env], address)]
        assert actions == [["forget"]], f"{env}: {address}: {actions}"
