"""`drift --notify-topic ARN`: one SNS message with the drifted resources per environment, read
back through an SQS queue subscribed to the topic on the moto server."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner

from mlcicd import orchestrate
from mlcicd.cli import main
from mlcicd.errors import MlcicdError
from tests.conftest import REGION


@pytest.fixture
def topic(aws_env):
    """(topic ARN, function returning the messages the subscribed queue received)."""
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    arn = sns.create_topic(Name="demo-drift")["TopicArn"]
    queue = sqs.create_queue(QueueName="drift-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)

    def received() -> list[dict]:
        found = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
            for message in batch:
                found.append(json.loads(message["Body"]))  # the SNS envelope: Subject, Message, ...
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return found

    return arn, received


def with_second_env(project):
    cfg = project / "mlcicd.yaml"
    cfg.write_text(cfg.read_text() + "  app2:\n    account: staging\n    dir: terraform/app\n"
                   "    assume_role: false\n    depends_on: [app]\n    vars:\n      greeting: hi\n")
    return cfg


def test_drifted_resources_go_out_in_one_message(project, topic, monkeypatch):
    arn, received = topic
    cfg = with_second_env(project)

    # Terraform's built-in resources never drift (their refresh returns the state as it is), so the
    # drift check's outcome is given here; the report, the message and SNS are the real ones.
    def drift_task(config, runtime):
        def task(name, sink):
            if name == "app":
                return orchestrate.EnvResult(name, "drifted", "2 resource(s)",
                                             drifted=("aws_s3_bucket.data", 'aws_iam_role.this["runner"]'))
            return orchestrate.EnvResult(name, "no changes", "no drift")
        return task

    monkeypatch.setattr(orchestrate, "drift_task", drift_task)
    monkeypatch.setenv("MLCICD_DRIFT_TOPIC_ARN", arn)
    result = CliRunner().invoke(main, ["--config", str(cfg), "drift", "app", "app2"])
    assert result.exit_code == 2, result.output
    messages = received()
    assert len(messages) == 1
    assert messages[0]["Subject"] == "mlcicd demo: drift in app"
    body = messages[0]["Message"]
    assert "mlcicd drift check of demo: 1 environment(s) drifted." in body
    assert ("app: 2 resource(s) changed outside Terraform\n  - aws_s3_bucket.data\n"
            '  - aws_iam_role.this["runner"]') in body
    assert "app2" not in body
    assert f"notified {arn}" in result.output


def test_failed_check_is_sent_and_the_run_fails(project, topic, monkeypatch):
    arn, received = topic

    def drift_task(config, runtime):
        def task(name, sink):
            raise MlcicdError("terraform plan (app) failed: no credentials")
        return task

    monkeypatch.setattr(orchestrate, "drift_task", drift_task)
    result = CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), "drift", "app",
                                       "--notify-topic", arn])
    assert result.exit_code == 1
    [message] = received()
    assert message["Subject"] == "mlcicd demo: drift check failed for app"
    assert "app: could not be checked (failed: terraform plan (app) failed: no credentials)" in message["Message"]


@pytest.mark.usefixtures("state_bucket")
def test_no_message_when_nothing_drifted(project, topic):
    arn, received = topic
    cfg = with_second_env(project)
    runner = CliRunner()
    applied = runner.invoke(main, ["--config", str(cfg), "apply", "app", "app2", "--auto-approve"])
    assert applied.exit_code == 0, applied.output
    result = runner.invoke(main, ["--config", str(cfg), "drift", "app", "app2", "--notify-topic", arn])
    assert result.exit_code == 0, result.output
    assert "nothing drifted: no notification" in result.output
    assert received() == []


def test_bad_topic_arn_and_a_topic_that_does_not_exist(project, aws_env, monkeypatch):
    monkeypatch.setattr(orchestrate, "drift_task", lambda config, runtime: (
        lambda name, sink: orchestrate.EnvResult(name, "drifted", "1", drifted=("x.y",))))
    runner = CliRunner()
    args = ["--config", str(project / "mlcicd.yaml"), "drift", "app", "--notify-topic"]
    bad = runner.invoke(main, [*args, "not-an-arn"])
    assert bad.exit_code == 2 and "is not an SNS topic ARN" in bad.output
    missing = runner.invoke(main, [*args, "arn:aws:sns:us-east-1:123456789012:nope"])
    assert missing.exit_code == 1
    assert "not found publishing the drift notification" in missing.output, missing.output
