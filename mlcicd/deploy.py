"""Init, plan, apply, destroy and output for one environment.

A `Workspace` ties one environment of the config to the Terraform runner: it renders the
environment's files, inits when the backend changed, and writes/applies plan directories.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mlcicd import aws, masking, render, review, review_format
from mlcicd import plan as plandir
from mlcicd.config import Config, Environment, fingerprint
from mlcicd.errors import PlanRefused, TerraformError, UsageError
from mlcicd.masking import Masker
from mlcicd.runtime import Runtime
from mlcicd.terraform import (
    NeedsInit,
    Sink,
    Terraform,
    build_argv,
    error_excerpt,
    raise_if_needs_init,
    resolve_executable,
    write_cli_config,
)

INIT_STAMP = "mlcicd-init.sha256"


@dataclass(frozen=True)
class PlanOutcome:
    plan_dir: Path
    manifest: plandir.Manifest
    summary: str

    @property
    def has_changes(self) -> bool:
        return self.manifest.has_changes


class Workspace:
    def __init__(self, config: Config, env: Environment, runtime: Runtime,
                 masker: Masker | None = None, sink: Sink | None = None, color: bool = False) -> None:
        self.config = config
        self.env = env
        self.runtime = runtime
        self.masker = masker or Masker.from_settings(config.masks, runtime.environ)
        self.workdir = render.env_dir(config, env)
        self.tf = Terraform(
            executable=resolve_executable(runtime.terraform),
            environ=runtime.environ,
            data_dir=self.workdir / "tfdata",
            cli_config=config.workdir / "terraformrc",
            masker=self.masker,
            sink=sink,
            color=color,
            plugin_cache=runtime.cache_dir / "plugins" if runtime.cache_dir else None,
            user_cli_config=runtime.tf_cli_config_file,
        )
        self._rendered: render.Rendered | None = None
        self._version: str | None = None

    # -- preparation -------------------------------------------------------------------------

    def check_dir(self) -> None:
        if not self.env.dir.is_dir():
            raise UsageError(
                f"environment '{self.env.name}': root module directory {self.env.dir} does not exist",
                hint=f"create it, or set environments.{self.env.name}.dir in {self.config.path.name}",
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
        argv = build_argv("init", {
            "input": "false", "reconfigure": True, "lock_timeout": "0s",
            "backend_config": [str(rendered.backend)], **self._color_flag(),
        })
        with self.tf.plugin_cache_lock():
            try:
                self.tf.check(argv, cwd=self.env.dir, what=f"init ({self.env.name})")
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
        self.init()
        rendered = self.render()
        plan_dir = (out or self.workdir / "plan").resolve()
        plan_dir.mkdir(parents=True, exist_ok=True)
        # Never leave a manifest beside a plan it does not describe.
        (plan_dir / plandir.MANIFEST).unlink(missing_ok=True)
        plan_file = plan_dir / plandir.PLAN_FILE
        # Per process: a concurrent run that fails must not delete this run's partial plan.
        tmp_plan = plan_dir / f".{plandir.PLAN_FILE}.{os.getpid()}.partial"
        argv = build_argv("plan", {
            "input": "false", "lock_timeout": "0s", "detailed_exitcode": True,
            "var_file": [str(rendered.tfvars)], "destroy": destroy, "refresh_only": refresh_only,
            "var": list(extra_vars), "out": str(tmp_plan), **self._color_flag(),
        })
        def run() -> None:
            with self._state_secrets_learned() as ready:
                self._run_locked(argv, what=f"plan ({self.env.name})", ok=(0, 2), hold=ready)

        try:
            self._initialised_again_if_needed(run)
            tmp_plan.chmod(0o600)  # the binary plan holds variable values and state, secrets included
            tmp_plan.replace(plan_file)
        finally:
            tmp_plan.unlink(missing_ok=True)
        shown = self.tf.check(["show", "-json", str(plan_file)], cwd=self.env.dir,
                              what="show -json", capture=True)
        plandir.write_plan_json(plan_dir, shown.stdout)
        plan = plandir.PlanJSON.load(plan_dir / plandir.PLAN_JSON)
        self._mask(review.sensitive_strings(plan))
        plan_sha256 = plandir.sha256_file(plan_file)
        built = review.build(self.env.name, plan, self.masker, plan_sha256)
        summary = review_format.write(plan_dir, built)
        manifest = plandir.Manifest(
            format=plandir.FORMAT,
            project=self.config.project,
            env=self.env.name,
            account_id=self.env.account_id,
            plan_sha256=plan_sha256,
            terraform_version=plan.data.get("terraform_version") or self.terraform_version(),
            config_digest=self.config_digest(),
            has_changes=built.has_changes,
            counts=built.counts,
        )
        plandir.write_manifest(plan_dir, manifest)
        return PlanOutcome(plan_dir, manifest, summary)

    # -- apply -------------------------------------------------------------------------------

    def apply_plan(self, plan_dir: Path) -> plandir.Manifest:
        """Apply exactly the plan in `plan_dir`, after verifying its manifest."""
        plan_dir = plan_dir.resolve()
        plandir.read_manifest(plan_dir)  # a clear error before any Terraform work
        self.init()
        manifest = plandir.verify(
            plan_dir, env=self.env.name, terraform_version=self.terraform_version(),
            config_digest=self.config_digest(),
        )
        if (plan_dir / plandir.PLAN_JSON).is_file():
            self._mask(review.sensitive_strings(plandir.PlanJSON.load(plan_dir / plandir.PLAN_JSON)))
        argv = build_argv("apply", {"input": "false", "lock_timeout": "0s", **self._color_flag()},
                          [str(plan_dir / plandir.PLAN_FILE)])
        self._initialised_again_if_needed(
            lambda: self._run_locked(argv, what=f"apply ({self.env.name})", stale_check=True))
        return manifest

    def apply(self, *, auto_approve: bool, confirm: Callable[[PlanOutcome], bool],
              destroy: bool = False) -> PlanOutcome | None:
        """Plan (to destroy, with destroy=True), confirm unless auto-approved, apply that plan.
        None when declined."""
        outcome = self.plan(destroy=destroy)
        if not outcome.has_changes:
            return outcome
        if not auto_approve and not confirm(outcome):
            return None
        self.apply_plan(outcome.plan_dir)
        return outcome

    def destroy(self, *, auto_approve: bool, confirm: Callable[[PlanOutcome], bool]) -> PlanOutcome | None:
        return self.apply(auto_approve=auto_approve, confirm=confirm, destroy=True)

    def output(self, name: str | None = None, *, as_json: bool = False) -> str:
        self.init()
        # `output -json` and `-raw` print sensitive outputs in clear: learn them first, mask them.
        every = self.tf.check(["output", "-json"], cwd=self.env.dir, what="output", capture=True).stdout
        self._mask(masking.sensitive_state_values({"values": {"outputs": json.loads(every or "{}")}}))
        if as_json and not name:
            return self.masker(every)
        argv = build_argv("output", {"json": as_json, "raw": bool(name) and not as_json,
                                     **self._color_flag()}, [name] if name else [])
        return self.masker(self.tf.check(argv, cwd=self.env.dir, what="output", capture=True).stdout)

    def force_unlock(self, lock_id: str) -> None:
        self.init()
        argv = build_argv("force-unlock", {"force": True}, [lock_id])
        self.tf.check(argv, cwd=self.env.dir, what="force-unlock")

    # -- helpers -----------------------------------------------------------------------------

    def _initialised_again_if_needed(self, run: Callable[[], None]) -> None:
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
                state = self.tf.check(build_argv("show", {"json": True, **self._color_flag()}),
                                      cwd=self.env.dir, what="show -json (state)", capture=True)
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

    def _run_locked(self, argv: list[str], *, what: str, ok: tuple[int, ...] = (0,),
                    stale_check: bool = False, hold: threading.Event | None = None) -> None:
        result = self.tf.run(argv, cwd=self.env.dir, hold=hold)
        if result.returncode in ok:
            return
        raise_if_needs_init(result, what)
        lock = parse_lock_info(result.tail)
        if lock is not None and lock["id"] == "?":
            # Terraform lost the race for the lock but found no lock to describe: the holder
            # (a short plan, say) had released it by the time Terraform looked.
            raise TerraformError(
                f"terraform {what} failed: another run held the state lock of '{self.env.name}' "
                "and released it moments later",
                returncode=result.returncode, hint="run the command again",
            )
        if lock is not None:
            raise TerraformError(
                f"terraform {what} failed: the state of '{self.env.name}' is locked by "
                f"{lock['who'] or 'another run'} (lock ID {lock['id']}"
                + (f", operation {lock['operation']}" if lock["operation"] else "") + ")",
                returncode=result.returncode,
                hint=f"wait for that run to finish; if it died, `mlcicd force-unlock {self.env.name} {lock['id']}`",
            )
        if stale_check and "Saved plan is stale" in result.tail:
            raise PlanRefused(
                f"refusing to apply: the state of '{self.env.name}' changed after the plan was made "
                "(the plan is stale); nothing was applied",
                hint="plan again and review the new plan",
            )
        errored = self.env.dir / "errored.tfstate"
        if "errored.tfstate" in result.tail and errored.is_file():
            errored.chmod(0o600)  # the whole state, secrets included
            raise TerraformError(
                f"terraform {what} failed (exit {result.returncode}) and could not upload the state; "
                f"Terraform saved it to {errored}" + error_excerpt(result.tail),
                returncode=result.returncode,
                hint=f"when the backend is reachable: release a left lock (`mlcicd force-unlock {self.env.name} "
                f"LOCK_ID`), then TF_DATA_DIR={self.tf.data_dir} terraform -chdir={self.env.dir} state push "
                "errored.tfstate, and delete the file (it holds secrets)",
            )
        raise TerraformError(f"terraform {what} failed (exit {result.returncode})",
                             excerpt=error_excerpt(result.tail), returncode=result.returncode)


_LOCK_FIELD = re.compile(r"^\s*[│ ]*\s*(ID|Path|Operation|Who|Version|Created|Info):\s*(.*)$", re.M)


def parse_lock_info(tail: str) -> dict[str, str] | None:
    if "Error acquiring the state lock" not in tail:
        return None
    fields = {k.lower(): v.strip() for k, v in _LOCK_FIELD.findall(tail)}
    return {"id": fields.get("id", "?"), "who": fields.get("who", ""),
            "operation": fields.get("operation", ""), "path": fields.get("path", "")}


def _module_sources(directory: Path) -> list[bytes]:
    """Digest material for a root module: each .tf/.tf.json/.terraform.lock.hcl file, by name."""
    parts: list[bytes] = []
    for path in sorted(directory.iterdir()):
        if path.is_file() and (path.suffix == ".tf" or path.name.endswith(".tf.json")
                               or path.name == ".terraform.lock.hcl"):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            parts.append(f"{path.name}:{digest}".encode())
    return parts
