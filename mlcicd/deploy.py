"""Init, plan, apply, destroy, output and recovery for one environment.

A `Workspace` ties one environment of the config to a Terraform runner: it renders the
environment's files, inits when the backend changed, writes plan directories (through
plandir) and applies them. Applying a plan directory runs every check that needs no
Terraform before `init`, then applies a private copy of the verified bytes in a private
mirror of the root module, so a failed state upload leaves this environment's own
recovery file, never a file in a directory other environments share.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mlcicd import aws, fsutil, masking, plandir, planfile, render, review, review_format
from mlcicd.config import Config, Environment, fingerprint
from mlcicd.errors import NeedsInit, PlanRefused, StateNotSaved, TerraformError, UnrecoveredState, UsageError
from mlcicd.masking import Masker
from mlcicd.runtime import Runtime
from mlcicd.terraform import (
    Sink,
    Terraform,
    build_argv,
    resolve_executable,
    write_cli_config,
)

INIT_STAMP = "mlcicd-init.sha256"
RECOVERY_FILE = "errored.tfstate"


@dataclass(frozen=True)
class PlanOutcome:
    plan_dir: Path
    manifest: plandir.Manifest
    summary: str
    review: review.Review

    @property
    def has_changes(self) -> bool:
        return self.manifest.has_changes


def require_root_module(config: Config, env: Environment) -> None:
    if not env.dir.is_dir():
        raise UsageError(
            f"environment '{env.name}': root module directory {env.dir} does not exist",
            hint=f"create it, or set environments.{env.name}.dir in {config.path.name}",
        )


def runner(config: Config, env: Environment, runtime: Runtime, masker: Masker | None = None,
           sink: Sink | None = None, color: bool = False) -> Terraform:
    """The Terraform runner for one environment: its own data directory, the shared plugin cache."""
    return Terraform(
        executable=resolve_executable(runtime.terraform),
        environ=runtime.environ,
        data_dir=render.env_dir(config, env) / "tfdata",
        cli_config=config.workdir / "terraformrc",
        masker=masker or Masker(),
        sink=sink,
        color=color,
        plugin_cache=runtime.cache_dir / "plugins" if runtime.cache_dir else None,
        user_cli_config=runtime.tf_cli_config_file,
    )


class Workspace:
    # An offline preview's plans carry a marker and a flag in the manifest; none can be applied.
    offline_note: str | None = None

    def __init__(self, config: Config, env: Environment, runtime: Runtime,
                 masker: Masker | None = None, sink: Sink | None = None, color: bool = False,
                 tf: Terraform | None = None, workdir: Path | None = None) -> None:
        self.config = config
        self.env = env
        self.runtime = runtime
        self.masker = masker or Masker.from_settings(config.masks, runtime.environ)
        self.workdir = workdir or render.env_dir(config, env)
        self.tf = tf or runner(config, env, runtime, sink=sink, color=color)
        self.tf.masker = self.masker
        self._rendered: render.Rendered | None = None
        self._version: str | None = None

    # -- preparation -------------------------------------------------------------------------

    def check_dir(self) -> None:
        require_root_module(self.config, self.env)

    @property
    def recovery_file(self) -> Path:
        """Where a state Terraform could not upload is kept: this environment's own directory."""
        return self.workdir / RECOVERY_FILE

    def check_recovered(self) -> None:
        if self.recovery_file.exists():
            raise UnrecoveredState(
                f"environment '{self.env.name}' has state from a failed apply that never reached the "
                f"backend ({self.recovery_file}); planning or applying now would ignore what it recorded",
                hint=f"`mlcicd recover {self.env.name}` pushes it back (if the state lock is still held, "
                f"`mlcicd force-unlock {self.env.name} LOCK_ID` first)",
            )

    def render(self) -> render.Rendered:
        if self._rendered is None:
            self._rendered = render.render(self.config, self.env, self.runtime)
            if self.env.dir.is_dir():
                names = masking.sensitive_variables(self.env.dir)
                tfvars = json.loads(self._rendered.tfvars.read_bytes())
                self._mask(masking.sensitive_input_values(names, tfvars, self.runtime.environ))
        return self._rendered

    def _mask(self, values: list[str]) -> None:
        """Mask `values` from now on in everything printed, Terraform's own output included."""
        if values:
            self.masker = self.masker.with_values(values)
            self.tf.masker = self.masker

    def _color_flag(self) -> dict:
        return {"no_color": not self.tf.color}

    def _check(self, argv: list[str], what: str, *, cwd: Path | None = None, capture: bool = False,
               ok: tuple[int, ...] = (0,), hold: threading.Event | None = None):
        return self.tf.check(argv, cwd=cwd or self.env.dir, what=f"{what} ({self.env.name})", capture=capture,
                             ok=ok, env=self.env.name, hold=hold)

    def init(self, *, force: bool = False) -> bool:
        """Render and `terraform init` when needed. Returns True when init ran."""
        self.check_dir()
        rendered = self.render()
        write_cli_config(self.tf.cli_config, self.tf.plugin_cache)
        stamp_path = self.tf.data_dir / INIT_STAMP
        stamp = fingerprint(
            rendered.backend.read_bytes(), *_module_sources(self.env.dir), str(self.env.dir).encode()
        )
        if not force and stamp_path.is_file() and stamp_path.read_text() == stamp:
            return False
        # Forget the last good init first: after an init that fails part-way, every command
        # must init again rather than run against the previous backend.
        stamp_path.unlink(missing_ok=True)
        argv = build_argv("init", {
            "input": "false", "reconfigure": True, "lock_timeout": "0s",
            "backend_config": [str(rendered.backend)], **self._color_flag(),
        })
        with self.tf.plugin_cache_lock():
            try:
                self._check(argv, "init")
            except TerraformError as exc:
                exc.hint = aws.state_access_hint(self.config, self.runtime, exc.message) or exc.hint
                raise
        stamp_path.write_text(stamp)
        return True

    def terraform_version(self) -> str:
        if self._version is None:
            self._version = self.tf.version(self.env.dir)
        return self._version

    def config_digest(self) -> str:
        rendered = self.render()
        return fingerprint(rendered.tfvars.read_bytes(), rendered.backend.read_bytes(),
                           *_module_sources(self.env.dir))

    # -- plan --------------------------------------------------------------------------------

    def plan(self, out: Path | None = None, *, destroy: bool = False, refresh_only: bool = False,
             extra_vars: tuple[str, ...] = ()) -> PlanOutcome:
        """Plan into a plan directory (default .mlcicd/ENV/plan) and describe it."""
        self.check_dir()
        self.check_recovered()
        plan_dir = plandir.prepare(out or self.workdir / "plan")
        self.init()
        rendered = self.render()
        with plandir.partial_plan(plan_dir) as partial:
            argv = build_argv("plan", {
                "input": "false", "lock_timeout": "0s", "detailed_exitcode": True,
                "var_file": [str(rendered.tfvars)], "destroy": destroy, "refresh_only": refresh_only,
                "var": list(extra_vars), "out": str(partial), **self._color_flag(),
            })

            def run() -> None:
                with self._state_secrets_learned() as ready:
                    self._check(argv, "plan", ok=(0, 2), hold=ready)

            self._initialised_again_if_needed(run)
            plan_file = plandir.commit_plan(partial)
        shown = self._check(["show", "-json", str(plan_file)], "show -json", capture=True)
        plandir.write_file(plan_dir, plandir.PLAN_JSON, shown.stdout.encode())
        plan = plandir.parse_plan_json(shown.stdout.encode(), plan_dir / plandir.PLAN_JSON)
        self._mask(review.sensitive_strings(plan))
        built = review.build(self.env.name, plan, self.masker, plandir.sha256_bytes(plan_file.read_bytes()),
                             offline=self.offline_note is not None)
        summary = review_format.write(plan_dir, built)
        if self.offline_note is not None:
            plandir.write_file(plan_dir, plandir.OFFLINE_MARKER, self.offline_note.encode())
        manifest = plandir.write_manifest(
            plan_dir, project=self.config.project, env=self.env.name, account_id=self.env.account_id,
            terraform_version=plan.data.get("terraform_version") or self.terraform_version(),
            config_digest=self.config_digest(), has_changes=built.has_changes, counts=built.counts,
            offline=self.offline_note is not None,
        )
        return PlanOutcome(plan_dir, manifest, summary, built)

    # -- apply -------------------------------------------------------------------------------

    def apply_plan(self, plan_dir: Path, *, expect_sha256: str | None = None) -> plandir.Manifest:
        """Apply exactly the verified plan in `plan_dir`, or refuse without applying anything."""
        verified = self._checked_before_init(plan_dir.absolute(), expect_sha256)
        self.init()
        manifest = verified.manifest
        if manifest.terraform_version != self.terraform_version():
            raise PlanRefused(
                f"refusing to apply: the plan was made with Terraform {manifest.terraform_version}, "
                f"this is Terraform {self.terraform_version()}",
                hint="apply with the same Terraform, or plan again")
        if manifest.config_digest != self.config_digest():
            raise PlanRefused(
                f"refusing to apply: the configuration of '{self.env.name}' changed after the plan was made",
                hint="plan again and review the new plan")
        self._mask(review.sensitive_strings(verified.plan_json))
        with plandir.private_copy(verified, self.workdir) as private:
            plan_file = private / plandir.PLAN_FILE
            shown = self._check(["show", "-json", str(plan_file)], "show -json", capture=True)
            if json.loads(shown.stdout or "null") != verified.plan_json.data:
                raise PlanRefused(
                    f"refusing to apply: {plandir.PLAN_JSON} in {verified.path} does not describe its "
                    f"{plandir.PLAN_FILE}; what was reviewed is not what would be applied",
                    hint="plan again and review the new plan")
            top = fsutil.mirror_top(self.env.dir, self.config.root)
            root = fsutil.mirror(self.env.dir, top, private / "tree")
            argv = build_argv("apply", {"input": "false", "lock_timeout": "0s", **self._color_flag()},
                              [str(plan_file)])
            try:
                self._initialised_again_if_needed(lambda: self._check(argv, "apply", cwd=root))
            except StateNotSaved as exc:
                raise self._keep_unsaved_state(root, exc) from None
        return manifest

    def _checked_before_init(self, plan_dir: Path, expect_sha256: str | None) -> plandir.VerifiedPlan:
        """Every check of a plan directory that needs no Terraform."""
        self.check_dir()
        self.check_recovered()
        verified = plandir.open_verified(plan_dir)
        plandir.check_custody(plan_dir)
        manifest = verified.manifest
        if manifest.offline:
            raise PlanRefused(f"refusing to apply: {plan_dir} is an offline preview, made against an empty "
                              "throw-away state with a stand-in provider; it can never be applied",
                              hint=f"plan for real: `mlcicd plan {self.env.name} --out DIR`")
        if manifest.env != self.env.name:
            raise PlanRefused(f"refusing to apply: {plan_dir} holds a plan for environment "
                              f"'{manifest.env}', not '{self.env.name}'")
        if manifest.project != self.config.project:
            raise PlanRefused(f"refusing to apply: {plan_dir} holds a plan of project '{manifest.project}', "
                              f"not '{self.config.project}'")
        if expect_sha256 is not None and expect_sha256.strip().lower() != manifest.plan_sha256:
            raise PlanRefused(
                f"refusing to apply: the plan in {plan_dir} has sha256 {manifest.plan_sha256}, "
                f"not the approved {expect_sha256.strip()}",
                hint="apply the plan that was approved, or plan, review and approve again")
        if verified.plan_json.data.get("terraform_version") != manifest.terraform_version:
            raise PlanRefused(f"refusing to apply: {plandir.PLAN_JSON} in {plan_dir} was made by Terraform "
                              f"{verified.plan_json.data.get('terraform_version')!r}, the manifest says "
                              f"{manifest.terraform_version!r}", hint="plan again")
        self._check_backend(verified)
        return verified

    def _check_backend(self, verified: plandir.VerifiedPlan) -> None:
        """Terraform writes the state to the backend stored in the plan: it must be this env's."""
        from mlcicd import hcl

        recorded = planfile.read_backend(verified.tfplan, verified.path)
        rendered = hcl.parse_file(self.render().backend)
        want = {"bucket": hcl.attr(rendered, "bucket"), "key": hcl.attr(rendered, "key")}
        got = {"bucket": recorded.config.get("bucket"), "key": recorded.config.get("key")}
        if recorded.type != "s3" or got != want or recorded.workspace != "default":
            raise PlanRefused(
                f"refusing to apply: the plan in {verified.path} writes its state to {recorded.type} "
                f"bucket {got['bucket']!r} key {got['key']!r} (workspace {recorded.workspace}), not to "
                f"'{self.env.name}''s state (bucket {want['bucket']!r} key {want['key']!r})",
                hint=f"this is another environment's plan, whatever its manifest says; plan '{self.env.name}' again")

    def _keep_unsaved_state(self, root: Path, exc: StateNotSaved) -> StateNotSaved:
        errored = root / RECOVERY_FILE
        if not errored.is_file():
            return exc
        self.recovery_file.parent.mkdir(parents=True, exist_ok=True)
        os.replace(errored, self.recovery_file)  # same filesystem: both under .mlcicd
        self.recovery_file.chmod(0o600)  # the whole state, secrets included
        return StateNotSaved(
            f"{exc.message}; Terraform saved it to {self.recovery_file}", returncode=exc.returncode,
            hint=f"when the backend is reachable: `mlcicd recover {self.env.name}` (release a left lock first "
            f"with `mlcicd force-unlock {self.env.name} LOCK_ID`)")

    def recover(self) -> Path:
        """Push the state a failed apply could not upload back to the backend, then delete it."""
        if not self.recovery_file.is_file():
            raise UsageError(f"environment '{self.env.name}' has no state to recover ({self.recovery_file} "
                             "does not exist)")
        self.init()
        argv = build_argv(["state", "push"], {"lock_timeout": "0s"}, [str(self.recovery_file)])
        self._check(argv, "state push")
        self.recovery_file.unlink()
        return self.recovery_file

    def apply(self, *, auto_approve: bool, confirm: Callable[[PlanOutcome], bool],
              destroy: bool = False) -> PlanOutcome | None:
        """Plan (to destroy, with destroy=True), confirm unless auto-approved, apply that plan.
        None when declined."""
        outcome = self.plan(destroy=destroy)
        if not outcome.has_changes:
            return outcome
        if not auto_approve and not confirm(outcome):
            return None
        self.apply_plan(outcome.plan_dir, expect_sha256=outcome.manifest.plan_sha256)
        return outcome

    def destroy(self, *, auto_approve: bool, confirm: Callable[[PlanOutcome], bool]) -> PlanOutcome | None:
        return self.apply(auto_approve=auto_approve, confirm=confirm, destroy=True)

    def output(self, name: str | None = None, *, as_json: bool = False) -> str:
        self.init()
        # `output -json` and `-raw` print sensitive outputs in clear: learn them first, mask them.
        every = self._check(["output", "-json"], "output", capture=True).stdout
        self._mask(masking.sensitive_state_values({"values": {"outputs": json.loads(every or "{}")}}))
        if as_json and not name:
            return self.masker(every)
        argv = build_argv("output", {"json": as_json, "raw": bool(name) and not as_json,
                                     **self._color_flag()}, [name] if name else [])
        return self.masker(self._check(argv, "output", capture=True).stdout)

    def force_unlock(self, lock_id: str) -> None:
        self.init()
        self._check(build_argv("force-unlock", {"force": True}, [lock_id]), "force-unlock")

    # -- helpers -----------------------------------------------------------------------------

    def _initialised_again_if_needed(self, run: Callable[[], object]) -> None:
        """run(), and if Terraform asks for init, init and run() once more. The init stamp
        covers the root module's files only; a module it calls can change what init must
        install (a nested module, a provider)."""
        try:
            run()
        except NeedsInit:
            self.init(force=True)
            run()

    @contextlib.contextmanager
    def _state_secrets_learned(self) -> Iterator[threading.Event]:
        """Learn the sensitive values in the current state while the caller's Terraform run
        starts; its output is held until they are known.

        Terraform can print a sensitive value from the prior state in clear (an attribute
        derived from it loses the mark). Reading the state (`show -json`) in parallel rather
        than before the plan saves a whole Terraform start-up on every plan.
        """
        ready = threading.Event()
        failure: list[BaseException] = []

        def learn() -> None:
            try:
                state = self._check(build_argv("show", {"json": True, **self._color_flag()}),
                                    "show -json (state)", capture=True)
                self._mask(masking.sensitive_state_values(json.loads(state.stdout or "{}")))
            except BaseException as exc:  # re-raised in the caller's thread below
                failure.append(exc)
            finally:
                ready.set()

        thread = threading.Thread(target=learn, name=f"mlcicd-state-{self.env.name}", daemon=True)
        thread.start()
        try:
            yield ready
        finally:
            thread.join()
        if failure:
            raise failure[0]


def _module_sources(directory: Path) -> list[bytes]:
    """Digest material for a root module: each .tf/.tf.json/.terraform.lock.hcl file, by name."""
    parts: list[bytes] = []
    for path in sorted(directory.iterdir()):
        if path.is_file() and (path.suffix == ".tf" or path.name.endswith(".tf.json")
                               or path.name == ".terraform.lock.hcl"):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            parts.append(f"{path.name}:{digest}".encode())
    return parts

