"""JSON documents in attributes compared by structure: IAM policies by statement, other
documents (pipeline definitions, container definitions) by path, list items by their name."""

from __future__ import annotations

import json

from mlcicd import docdiff


def _lines(before, after) -> list[str]:
    return [c.line() for c in docdiff.diff(before, after)]


def test_only_json_objects_and_arrays_are_documents():
    assert docdiff.parse('{"a": 1}') == {"a": 1}
    assert docdiff.parse('\n  [1, 2]') == [1, 2]
    assert docdiff.parse('"text"') is None and docdiff.parse("{not json") is None
    assert docdiff.parse("plain") is None and docdiff.parse(3) is None


def test_policy_statements_actions_and_principals_added_and_removed():
    before = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Use", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
         "Principal": {"AWS": ["arn:aws:iam::111111111111:role/a"]}},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}
    after = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Use", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": "*",
         "Principal": {"AWS": ["arn:aws:iam::222222222222:role/b"]}},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::c/*"}]}
    assert _lines(before, after) == [
        "+ Statement Use Action: kms:Encrypt",
        "+ Statement Use Principal.AWS: arn:aws:iam::222222222222:role/b",
        "- Statement Use Principal.AWS: arn:aws:iam::111111111111:role/a",
        "+ Statement: Allow s3:GetObject on arn:aws:s3:::c/*",
        "- Statement: Allow s3:GetObject on arn:aws:s3:::b/*",
    ]
    assert docdiff.diff(before, before) == ()


def test_a_new_policy_lists_every_statement():
    policy = {"Statement": {"Effect": "Deny", "NotAction": ["iam:*"], "NotResource": "arn:x",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}}
    told = 'Deny everything but iam:* on everything but arn:x when {"Bool": {"aws:SecureTransport": "false"}}'
    assert _lines(None, policy) == [f"+ Statement: {told}"]
    assert _lines(policy, None) == [f"- Statement: {told}"]


def test_pipeline_definition_steps_are_matched_by_name():
    before = {"Version": "2020-12-01", "Steps": [
        {"Name": "Train", "Type": "Training", "Arguments": {"InstanceCount": 1}},
        {"Name": "Evaluate", "Type": "Processing"}]}
    after = {"Version": "2020-12-01", "Steps": [
        {"Name": "Preprocess", "Type": "Processing"},
        {"Name": "Train", "Type": "Training", "Arguments": {"InstanceCount": 2}}]}
    assert _lines(before, after) == [
        '+ Steps[Preprocess]: {"Name": "Preprocess", "Type": "Processing"}',
        "~ Steps[Train].Arguments.InstanceCount: 1 → 2",
        '- Steps[Evaluate]: {"Name": "Evaluate", "Type": "Processing"}',
    ]


def test_container_definitions_by_name_and_lists_without_names_by_index():
    before = json.loads('[{"name": "app", "image": "app:1", "command": ["a", "b"]}]')
    after = json.loads('[{"name": "app", "image": "app:2", "command": ["a"]}, {"name": "log", "image": "fb"}]')
    assert _lines(before, after) == [
        '~ [app].image: "app:1" → "app:2"',
        '- [app].command[1]: "b"',
        '+ [log]: {"image": "fb", "name": "log"}',
    ]
