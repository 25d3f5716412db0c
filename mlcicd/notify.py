"""Drift alerts: after `drift`, one SNS message listing the drifted resources per environment.

Nothing is sent when nothing drifted. An environment whose check failed is listed too, and a
failed check alone is also sent: it may hide drift, and a scheduled run nobody watches must
not fail silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlcicd.config import Config
from mlcicd.errors import UsageError
from mlcicd.masking import Masker
from mlcicd.orchestrate import Report
from mlcicd.runtime import Runtime

_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
_SUBJECT_LIMIT = 100  # SNS: ASCII, no line breaks, at most 100 characters
_LISTED_PER_ENV = 200  # keeps a message well under SNS's 256 KB


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def check_topic(arn: str) -> str:
    if not _TOPIC_ARN.match(arn):
        raise UsageError(f"--notify-topic {arn!r} is not an SNS topic ARN",
                         hint="arn:aws:sns:REGION:ACCOUNT:NAME (or set MLCICD_DRIFT_TOPIC_ARN)")
    return arn


def drift_message(project: str, report: Report, masker: Masker) -> Message | None:
    """The message for `report`, or None when there is nothing to say."""
    drifted = [r for r in report.results if r.status == "drifted"]
    failed = [r for r in report.results if not r.ok]
    if not drifted and not failed:
        return None
    parts = []
    if drifted:
        parts.append(f"{len(drifted)} environment(s) drifted")
    if failed:
        parts.append(f"{len(failed)} could not be checked")
    lines = [f"mlcicd drift check of {project}: {', '.join(parts)}.", ""]
    for result in drifted:
        lines.append(f"{result.env}: {len(result.drifted)} resource(s) changed outside Terraform")
        lines += [f"  - {masker(address)}" for address in result.drifted[:_LISTED_PER_ENV]]
        if len(result.drifted) > _LISTED_PER_ENV:
            lines.append(f"  … and {len(result.drifted) - _LISTED_PER_ENV} more")
    for result in failed:
        lines.append(f"{result.env}: could not be checked ({result.status}: {masker(result.detail)})")
    lines += ["", "See the differences with `mlcicd drift ENV` or `mlcicd plan ENV`; apply to put the resources "
              "back as the code says, or change the code to keep them."]
    names = ", ".join(r.env for r in drifted) or ", ".join(r.env for r in failed)
    what = "drift in" if drifted else "drift check failed for"
    subject = f"mlcicd {project}: {what} {names}".encode("ascii", "replace").decode()
    if len(subject) > _SUBJECT_LIMIT:
        subject = subject[: _SUBJECT_LIMIT - 3] + "..."
    return Message(subject, "\n".join(lines) + "\n")


def publish_drift(config: Config, runtime: Runtime, report: Report, topic_arn: str) -> str | None:
    """Publish the drift message for `report` to `topic_arn`; its message id, or None when
    nothing drifted (and nothing was sent)."""
    from mlcicd import aws

    message = drift_message(config.project, report, Masker.from_settings(config.masks, runtime.environ))
    if message is None:
        return None
    sns = aws.client(config, runtime, "sns")
    with aws.errors("publishing the drift notification", resource=topic_arn):
        answer = sns.publish(TopicArn=topic_arn, Subject=message.subject, Message=message.body)
    return str(answer["MessageId"])
