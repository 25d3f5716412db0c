"""The one boto3 session factory: endpoints, region, bounded standard retries, role assumption,
and botocore failures turned into specific errors."""

from __future__ import annotations

import http.server
import os
import threading

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.parsers import ResponseParserError

from mlcicd import aws
from mlcicd.config import load
from mlcicd.runtime import Runtime
from tests.conftest import ACCOUNT, free_port, write_config


@pytest.fixture
def config(tmp_path):
    return load(write_config(tmp_path, region="eu-west-1"))


@pytest.fixture
def dummy_credentials(monkeypatch, tmp_path):
    # boto3 reads credentials itself (its chain); keep it away from any real ~/.aws files.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))


@pytest.mark.parametrize(("environ", "service", "expected"), [
    ({}, "s3", None),
    ({"AWS_ENDPOINT_URL": "http://all"}, "s3", "http://all"),
    ({"AWS_ENDPOINT_URL": "http://all", "AWS_ENDPOINT_URL_S3": "http://s3"}, "s3", "http://s3"),
    ({"AWS_ENDPOINT_URL": "http://all", "AWS_ENDPOINT_URL_S3": "http://s3"}, "sts", "http://all"),
    ({"AWS_ENDPOINT_URL_CODESTAR_CONNECTIONS": "http://cs"}, "codestar-connections", "http://cs"),
    ({"AWS_ENDPOINT_URL_CODESTAR_CONNECTIONS": "http://cs"}, "codeconnections", None),
    ({"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://smr"}, "sagemaker-runtime", "http://smr"),
    ({"AWS_ENDPOINT_URL": ""}, "s3", None),
])
def test_endpoint_url_uses_the_variables_botocore_reads(environ, service, expected):
    assert aws.endpoint_url(Runtime.from_environ(environ), service) == expected


def test_clients_get_region_endpoint_and_bounded_standard_retries(config):
    runtime = Runtime.from_environ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    s3 = aws.client(config, runtime, "s3")
    assert s3.meta.region_name == "eu-west-1"
    assert s3.meta.endpoint_url == "http://127.0.0.1:9"
    assert s3.meta.config.retries == {"mode": "standard", "total_max_attempts": aws.MAX_ATTEMPTS}
    assert s3.meta.config.s3 == {"addressing_style": "path"}
    assert "mlcicd/" in s3.meta.config.user_agent_extra


class _AlwaysThrottling(http.server.BaseHTTPRequestHandler):
    """An STS look-alike that throttles every request, counting them."""

    calls = 0
    body = (b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            b"<Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>")

    def do_POST(self):  # noqa: N802 - the http.server naming
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(400)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_throttling_is_retried_by_the_sdk_a_bounded_number_of_times(config, dummy_credentials):
    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), _AlwaysThrottling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        runtime = Runtime.from_environ({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
        session = aws.session(config, runtime)
        sts = aws.client(config, runtime, "sts", boto_session=session, max_attempts=3)
        with pytest.raises(aws.AwsThrottled) as err, aws.errors("identifying the caller"):
            sts.get_caller_identity()
    finally:
        server.shutdown()
        server.server_close()
    assert _AlwaysThrottling.calls == 3
    assert "AWS throttled identifying the caller (Throttling) after 3 attempt(s)" in str(err.value)


class _HtmlPage500(http.server.BaseHTTPRequestHandler):
    """A JSON-protocol endpoint that does not serve the API: an HTML error page, no AWS error code
    (as the emulator answers for an operation it lacks). `coded` answers AWS's InternalFailure."""

    calls = 0
    coded = False

    def do_POST(self):  # noqa: N802 - the http.server naming
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.coded:
            body, kind = b'{"__type": "InternalFailure", "message": "oops"}', "application/x-amz-json-1.1"
        else:
            kind = "text/html"
            body = (b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
                    b"<h1>Internal Server Error</h1>\n<p>The server encountered an internal error</p>\n")
        self.send_response(500)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("coded", [False, True])
def test_a_server_error_without_an_aws_code_is_tried_twice_and_named(config, dummy_credentials, monkeypatch, coded):
    monkeypatch.setattr(_HtmlPage500, "calls", 0)
    monkeypatch.setattr(_HtmlPage500, "coded", coded)
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)
    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), _HtmlPage500)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        runtime = Runtime.from_environ({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
        pipeline = aws.client(config, runtime, "codepipeline", boto_session=aws.session(config, runtime),
                              max_attempts=4)
        with pytest.raises(aws.AwsError) as err, aws.errors("reading the pipeline"):
            pipeline.get_pipeline_state(name="demo-pipeline")
    finally:
        server.shutdown()
        server.server_close()
    if coded:  # AWS's own transient error keeps the standard retries
        assert _HtmlPage500.calls == 4
        assert type(err.value) is aws.AwsCallFailed
        return
    assert _HtmlPage500.calls == aws.UNCODED_ATTEMPTS
    assert type(err.value) is aws.AwsNoErrorCode
    message = str(err.value)
    assert message.startswith("AWS error reading the pipeline: codepipeline GetPipelineState answered HTTP 500 "
                              "(500 Internal Server Error) with no AWS error code")
    assert f"the endpoint http://127.0.0.1:{port} may not implement codepipeline:GetPipelineState" in message
    assert "<" not in message


def test_a_403_on_the_state_bucket_gets_a_hint(config):
    text = ('Unable to access object "app/terraform.tfstate" in S3 bucket "tfstate-test": operation error S3: '
            "HeadObject, https response error StatusCode: 403, RequestID: , HostID: , api error Forbidden: Forbidden")
    emulator = Runtime.from_environ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert "tls_policy: false" in aws.state_access_hint(config, emulator, text)
    assert "s3:GetObject" in aws.state_access_hint(config, Runtime(), text)
    assert aws.state_access_hint(config, emulator, "StatusCode: 404, api error NotFound") is None


def test_role_assumption_through_sts(config, aws_env):
    runtime = Runtime.from_environ(dict(os.environ))
    role = "arn:aws:iam::222222222222:role/demo-staging-deploy"
    session = aws.session(config, runtime, role_arn=role, session_name="mlcicd-test")
    assert aws.caller_account(config, runtime, session) == "222222222222"
    identity = aws.client(config, runtime, "sts", boto_session=session).get_caller_identity()
    assert identity["Arn"].endswith(":assumed-role/demo-staging-deploy/mlcicd-test")
    # The credentials refresh themselves before expiry instead of failing a long --wait.
    assert session.get_credentials().method == "sts-assume-role"
    assert aws.caller_account(config, runtime) == ACCOUNT  # without a role: the caller itself


def test_unknown_profile_is_a_credentials_error(config, dummy_credentials):
    with pytest.raises(aws.AwsCredentialsError, match="nope"):
        aws.session(config, Runtime(profile="nope"))


def test_unreachable_endpoint_is_named(config, dummy_credentials):
    url = f"http://127.0.0.1:{free_port()}"
    runtime = Runtime.from_environ({"AWS_ENDPOINT_URL": url})
    session = aws.session(config, Runtime())
    sts = aws.client(config, runtime, "sts", boto_session=session, max_attempts=1)
    with pytest.raises(aws.AwsEndpointError) as err, aws.errors("identifying the caller"):
        sts.get_caller_identity()
    assert url in str(err.value)


def client_error(code: str, message: str = "m") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Op")


@pytest.mark.parametrize(("exc", "kind", "said"), [
    (client_error("AccessDenied", "no s3:PutObject"), aws.AwsAccessDenied,
     "access denied writing state on b-1: no s3:PutObject"),
    (client_error("AccessDeniedException"), aws.AwsAccessDenied, "access denied writing state"),
    (client_error("ThrottlingException"), aws.AwsThrottled, "throttled writing state (ThrottlingException)"),
    (client_error("SlowDown"), aws.AwsThrottled, "(SlowDown) after 1 attempt(s)"),
    (client_error("ExpiredToken"), aws.AwsCredentialsError, "rejected the credentials"),
    (client_error("InvalidClientTokenId"), aws.AwsCredentialsError, "rejected the credentials"),
    (client_error("NoSuchBucket"), aws.AwsNotFound, "b-1 not found writing state"),
    (client_error("ValidationError", "bad name"), aws.AwsCallFailed, "ValidationError: bad name"),
    (NoCredentialsError(), aws.AwsCredentialsError, "no AWS credentials found writing state"),
    (ResponseParserError("invalid XML received:\nb'<html><title>502 Bad Gateway</title><body>...'"),
     aws.AwsCallFailed, "AWS error writing state: unreadable response: 502 Bad Gateway"),
])
def test_translate_maps_each_failure_to_a_specific_error(exc, kind, said):
    translated = aws.translate(exc, "writing state", "b-1")
    assert type(translated) is kind
    assert said in str(translated)


def test_errors_leaves_non_aws_exceptions_alone():
    with pytest.raises(KeyError), aws.errors("anything"):
        raise KeyError("x")


def test_devops_session_refuses_another_account(tmp_path, aws_env):
    other = load(write_config(tmp_path, accounts={k: "210987654321" for k in
                                                  ("devops", "dev", "staging", "prod", "data")}))
    runtime = Runtime.from_environ(dict(os.environ))
    with pytest.raises(aws.WrongAccount) as err:
        aws.devops_session(other, runtime)
    assert (err.value.actual, err.value.expected) == (ACCOUNT, "210987654321")


def test_a_named_profile_supplies_the_credentials(config, aws_env, monkeypatch, tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text("[devops]\naws_access_key_id = fromprofile\naws_secret_access_key = secret\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    runtime = Runtime.from_environ({**os.environ, "AWS_PROFILE": "devops"})
    session = aws.session(config, runtime)
    assert session.get_credentials().access_key == "fromprofile"
    assert aws.caller_account(config, runtime, session) == ACCOUNT
    with pytest.raises(aws.AwsCredentialsError):
        aws.caller_account(config, Runtime.from_environ({**os.environ, "AWS_PROFILE": ""}))
