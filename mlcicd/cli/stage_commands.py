"""Plan review and the commands the pipeline stages run: review, run-pipeline, release,
status, approve, reject."""

from __future__ import annotations

import gc
from functools import wraps
from pathlib import Path
from typing import NamedTuple

import click

from mlcicd.cli.base import (
    State,
    env_argument,
    handle_errors,
    leave_without_teardown,
    main,
    pass_state,
)


class ReviewRequest(NamedTuple):
    """How `review` was asked to review: what to print, where, what blocks, and checkov."""

    fmt: str
    max_rows: int
    out: Path | None
    fail_on: str  # as given: the command parses it, so a bad value is a usage error like any other
    checkov: bool | None  # None: when it is installed


class PullRequest(NamedTuple):
    """--github-pr N, --sha and --review-url: the pull request a review is posted to."""

    number: int
    sha: str
    review_url: str


def with_review_options(func):
    """--format, --fail-on, --max-rows, --checkov and --out, given to the command as one `request`."""

    @wraps(func)
    def wrapper(*args, fmt, fail_on, max_rows, checkov, out, **kwargs):
        return func(*args, request=ReviewRequest(fmt, max_rows, out, fail_on, checkov), **kwargs)

    for option in reversed([
        click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json", "html"]), default="text",
                     show_default=True, help="How to print the review; html is one self-contained page."),
        click.option("--fail-on", "fail_on", metavar="KINDS", default="",
                     help="Exit 3 if the plan has any of these (comma-separated): destroy, replace, "
                          "create-before-destroy, destructive, create, update, import, move, forget, drift, output, "
                          "policy; or none (the pipeline's REVIEW_FAIL_ON offers it)."),
        click.option("--max-rows", type=click.IntRange(min=0), default=50, show_default=True,
                     help="Rows per section before grouping/cutting (0: all). JSON and html are never cut."),
        click.option("--checkov/--no-checkov", "checkov", default=None,
                     help="Run checkov on plan.json (default: when it is installed)."),
        click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
                     help="Write the review to FILE. With --format html only the headline is printed."),
    ]):
        wrapper = option(wrapper)
    return wrapper


def with_pull_request_options(func):
    """--github-pr, --sha and --review-url, given to the command as one `pull_request` (None
    without --github-pr)."""

    @wraps(func)
    def wrapper(*args, github_pr, sha, review_url, **kwargs):
        pull_request = PullRequest(github_pr, sha or "", review_url) if github_pr is not None else None
        return func(*args, pull_request=pull_request, **kwargs)

    for option in reversed([
        click.option("--github-pr", "github_pr", type=click.IntRange(min=1), metavar="N",
                     help="Post the review of every DIR (plan directories, or what `plan --out` wrote for several) "
                          "to pull request N: one comment, updated in place, and a commit status."),
        click.option("--sha", metavar="SHA", help="With --github-pr: the commit for the status "
                     "(default $CODEBUILD_RESOLVED_SOURCE_VERSION, else the pull request's head)."),
        click.option("--review-url", metavar="URL", default="",
                     help="With --github-pr: where the full review is (default $REVIEW_URL)."),
    ]):
        wrapper = option(wrapper)
    return wrapper


@main.command()
@click.argument("plan_paths", metavar="DIR...", nargs=-1, required=True, type=click.Path(path_type=Path))
@with_review_options
@click.option("--exports", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write PLAN_HEADLINE, PLAN_SHA256, counts and REVIEW_URL as shell exports (CodeBuild).")
@with_pull_request_options
@pass_state
@handle_errors
def review(state: State, plan_paths: tuple[Path, ...], request: ReviewRequest, exports: Path | None,
           pull_request: PullRequest | None) -> None:
    """Review a plan directory (or a plan.json): counts, destructive changes first, each
    resource's attribute changes, policy documents as diffs, drift, output changes, and
    checkov's findings. Sensitive values are never shown.

    With --github-pr N, every DIR's review goes to pull request N as one markdown comment.
    """
    import tempfile

    from mlcicd import plandir, review_format
    from mlcicd import review as reviewer
    from mlcicd.errors import UsageError
    from mlcicd.masking import Masker

    gates = reviewer.parse_gates(request.fail_on)
    if pull_request is not None:
        if exports is not None:
            raise UsageError("--exports goes with one plan directory, not with --github-pr")
        _post_to_pull_request(state, plan_paths, request, gates, pull_request)
        return
    if len(plan_paths) != 1:
        raise UsageError("review one plan directory at a time, or pass --github-pr N to post several as one comment")
    plan_path = plan_paths[0]
    # A review is one pass over plan.json in a short-lived process, and the plan is millions of
    # objects without cycles: the collector's walks over them free nothing and took a third of
    # a big review's time.
    gc.disable()
    loaded = plandir.load_for_review(plan_path)
    masker = Masker.from_settings(state.config.masks, state.runtime.environ)
    with tempfile.TemporaryDirectory(prefix="mlcicd-review-") as scratch:
        scan = _start_checkov(state, request.checkov, loaded, Path(scratch))
        result = reviewer.build(loaded.env, loaded.plan, masker, loaded.plan_sha256, offline=loaded.offline)
        if scan is not None:
            result = result.with_policy(scan.wait(masker, progress=lambda s: click.echo(
                f"checkov: still checking ({s:.0f} s)…", err=True)))
    text = review_format.render(result, request.fmt, request.max_rows)
    if request.out is not None:
        plandir.write_review_to(request.out, text.encode(), plan_path if loaded.plan_sha256 else None)
    if exports is not None:
        from mlcicd.pipeline import build_console_url, write_exports

        url = build_console_url(state.runtime.codebuild_build_arn)
        write_exports(exports, reviewer.exports(result, review_url=url))
    if request.fmt == "html" and request.out is not None:
        click.echo(f"{result.headline}\nReview page: {request.out}")
    else:
        click.echo(text, nl=False)
    if not loaded.plan_sha256:
        click.secho(f"unverified: {plan_path} is a bare plan.json, not a plan directory; nothing shows it is "
                    "the plan that would be applied", err=True, fg="yellow")
    leave_without_teardown(loaded, result, text)
    reviewer.gate(result, gates)


def _start_checkov(state: State, checkov: bool | None, loaded, scratch: Path):
    """Checkov, started first so it runs beside the review's own work, on the bytes that were
    verified (not the directory's file again); the environment's root module gives it the
    sources' justified skips."""
    if checkov is False:
        return None
    from mlcicd import policy

    if not (checkov or policy.checkov_available()):
        return None
    plan_json = scratch / "plan.json"
    plan_json.write_bytes(loaded.plan_json)
    env = state.config.environments.get(loaded.env)
    click.echo("checkov: checking plan.json in the background…", err=True)
    return policy.start(plan_json, env.dir if env is not None else None)


def _post_to_pull_request(state: State, paths: tuple[Path, ...], request: ReviewRequest, gates: frozenset[str],
                          pull_request: PullRequest) -> None:
    """Print and post the comment; a failed post is a warning, the exit code is the review's."""
    from mlcicd import pr_review
    from mlcicd.fsutil import atomic_write

    plans, posted = pr_review.review_pull_request(state.config, state.runtime, paths, pull_request.number,
                                                  sha=pull_request.sha, review_url=pull_request.review_url,
                                                  gates=gates, max_rows=request.max_rows,
                                                  checkov=request.checkov)
    if request.out is not None:
        atomic_write(request.out, posted.body.encode())
    click.echo(posted.body, nl=False)
    if posted.comment_url:
        verb = "posted" if posted.created else "updated"
        click.echo(f"{verb} the review comment: {posted.comment_url}", err=True)
    if posted.state:
        click.echo(f"commit status {pr_review.STATUS_CONTEXT}: {posted.state}", err=True)
    for problem in posted.problems:
        click.secho(f"Warning: {problem}", err=True, fg="yellow")
    pr_review.outcome(plans)


def output_check_options(func):
    """--check-output, --expect-columns, --expect-rows and --predictions, given to the command as
    one `check` (a sagemaker.OutputCheck, or None without --check-output)."""

    @wraps(func)
    def wrapper(*args, check_output: bool, expect_columns: str, expect_rows: int | None,
                predictions: str | None, **kwargs):
        from mlcicd.sagemaker import OutputCheck

        check = OutputCheck(tuple(c.strip() for c in expect_columns.split(",") if c.strip()), expect_rows,
                            predictions or "") if check_output else None
        return func(*args, check=check, **kwargs)

    for option in reversed([
        click.option("--check-output", is_flag=True,
                     help="With --wait: assert the predictions exist and have the expected shape."),
        click.option("--expect-columns", metavar="A,B,...", default="", help="Columns the predictions must have."),
        click.option("--expect-rows", type=click.IntRange(min=1), metavar="N", help="Rows the predictions must have."),
        click.option("--predictions", metavar="S3URI", help="Where the predictions are (default: from the execution)."),
    ]):
        wrapper = option(wrapper)
    return wrapper


@main.command("run-pipeline")
@env_argument
@click.argument("kind", type=click.Choice(["training", "inference"]))
@click.option("--wait", is_flag=True, help="Follow the execution until it ends; exit 1 if it fails.")
@click.option("--timeout", type=click.FloatRange(min=1), default=3600, show_default=True, metavar="SECONDS",
              help="With --wait: give up after this long.")
@click.option("--poll-interval", type=click.FloatRange(min=0), default=5, show_default=True, metavar="SECONDS",
              help="First wait between polls; it grows to 60 s.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A pipeline parameter (repeatable).")
@click.option("--pipeline-name", metavar="NAME", help="Default: PROJECT-ENV-KIND.")
@click.option("--no-assume-role", is_flag=True, help="Use the current credentials, not ENV's pipeline-runner role.")
@output_check_options
@click.option("--model-package", metavar="ARN", default="",
              help="Run this registered model: its artefacts are passed as the ModelDataUri parameter.")
@click.option("--output", "output_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Outputs as JSON (default .mlcicd/ENV/run-KIND.json).")
@click.option("--exports", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Outputs as shell exports (MODEL_PACKAGE_ARN, ...) for CodeBuild.")
@pass_state
@handle_errors
def run_pipeline(state: State, env: str, kind: str, wait: bool, timeout: float, poll_interval: float,
                 params: tuple[str, ...], pipeline_name: str | None, no_assume_role: bool, check,
                 model_package: str, output_file: Path | None, exports: Path | None) -> None:
    """Start ENV's SageMaker training or inference pipeline; with --wait, follow it to the end."""
    import json

    from mlcicd import aws, sagemaker
    from mlcicd.fsutil import atomic_write
    from mlcicd.pipeline import write_exports

    environment = state.env(env)
    request = sagemaker.RunRequest(
        pipeline=pipeline_name or sagemaker.pipeline_name(state.config, environment, kind), kind=kind,
        params=sagemaker.parse_params(params), wait=wait, timeout=timeout, check=check, model_package=model_package,
    )
    role = None if no_assume_role else state.config.runner_role_arn(environment)
    session = aws.session(state.config, state.runtime, role_arn=role, session_name=f"mlcicd-{kind}")
    out = output_file or state.config.workdir / env / f"run-{kind}.json"

    def record(result: sagemaker.RunResult) -> None:
        atomic_write(out, (json.dumps(result.to_dict(), indent=2) + "\n").encode())
        if exports is not None:
            write_exports(exports, result.exports())

    result = sagemaker.run(
        request, aws.client(state.config, state.runtime, "sagemaker", boto_session=session),
        lambda: aws.client(state.config, state.runtime, "s3", boto_session=session),
        poller=sagemaker.Poller(first=poll_interval, cap=max(60.0, poll_interval)), report=click.echo, record=record,
    )
    click.echo(f"{result.pipeline}: {result.status}"
               + (f"; model package {result.model_package_arn}" if result.model_package_arn else ""))


pipeline_option = click.option("--pipeline", "pipeline", metavar="NAME", help="Default: PROJECT-pipeline.")


def _codepipeline(state: State, pipeline: str | None):
    from mlcicd import aws
    from mlcicd import pipeline as cp

    return aws.client(state.config, state.runtime, "codepipeline"), pipeline or cp.pipeline_name(state.config)


@main.command()
@pipeline_option
@pass_state
@handle_errors
def release(state: State, pipeline: str | None) -> None:
    """Start the pipeline on the latest commit (the console's "Release change")."""
    from mlcicd import pipeline as cp

    client, name = _codepipeline(state, pipeline)
    click.echo(f"{name}: started execution {cp.release(client, name)}")


@main.command()
@pipeline_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
@handle_errors
def status(state: State, pipeline: str | None, as_json: bool) -> None:
    """Every stage and action of the pipeline with its status."""
    import json

    from mlcicd import pipeline as cp

    client, name = _codepipeline(state, pipeline)
    current = cp.state(client, name)
    click.echo(json.dumps(current.to_dict(), indent=2) if as_json else current.table(), nl=as_json)


def _decide(state: State, pipeline: str | None, approve: bool, comment: str, action: str | None) -> None:
    from mlcicd import pipeline as cp

    client, name = _codepipeline(state, pipeline)
    target = cp.decide(client, name, approve=approve, comment=comment, action=action)
    click.echo(f"{name}: {'approved' if approve else 'rejected'} {target.stage}/{target.name}")


def decision_options(func):
    """--pipeline, --comment and --action, shared by approve and reject."""
    func = click.option("--action", "action", metavar="STAGE/ACTION",
                        help="Which approval, if several are pending.")(func)
    func = click.option("--comment", default="", help="Recorded with the decision.")(func)
    return pipeline_option(func)


@main.command()
@decision_options
@pass_state
@handle_errors
def approve(state: State, pipeline: str | None, comment: str, action: str | None) -> None:
    """Approve the pending manual approval (the prod deploy)."""
    _decide(state, pipeline, True, comment, action)


@main.command()
@decision_options
@pass_state
@handle_errors
def reject(state: State, pipeline: str | None, comment: str, action: str | None) -> None:
    """Reject the pending manual approval; the execution stops there."""
    _decide(state, pipeline, False, comment, action)


