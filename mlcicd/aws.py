"""The one place that builds boto3 sessions and clients, and that turns botocore failures into
specific MlcicdError subclasses.

Usage::

    from mlcicd import aws

    s3 = aws.client(config, runtime, "s3")                     # devops credentials / profile
    cp = aws.client(config, runtime, "codepipeline", role_arn=arn)  # via STS AssumeRole
    with aws.errors("reading the state bucket", resource=bucket):
        s3.head_bucket(Bucket=bucket)                          # ClientError -> AwsError subclass
    session = aws.devops_session(config, runtime)              # refuses non-devops credentials
    kms = aws.client(config, runtime, "kms", boto_session=session)

Credentials come from boto3's usual chain (environment, profile, instance role); the profile
from Runtime (AWS_PROFILE). Region is the config's. Endpoints honour AWS_ENDPOINT_URL and
AWS_ENDPOINT_URL_<SERVICE> as read into Runtime, so tests and CI can point everything at an
emulator. Throttling is retried by botocore's `standard` retry mode with a bounded number of
attempts, never by a loop of our own. A server error that carries no AWS error code (an HTML
page from an emulator that lacks the API, or from a proxy) is retried once, not five times:
AWS services always answer with a code, so more attempts rarely help and only keep the user
waiting in silence.
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlcicd.errors import AwsError

if TYPE_CHECKING:
    import boto3

    from mlcicd.config import Config
    from mlcicd.runtime import Runtime

# Total attempts per call, first one included. Bounded so a throttled CI job fails in
# seconds with a clear message rather than hanging.
MAX_ATTEMPTS = 6
UNCODED_ATTEMPTS = 2
DEFAULT_SESSION_NAME = "mlcicd"
_ROLE_DURATION_SECONDS = 3600


class AwsCredentialsError(AwsError):
    """No usable credentials: none found, unknown profile, expired or invalid keys."""


class AwsAccessDenied(AwsError):
    """The caller is authenticated but not allowed to do this."""

    def __init__(self, action: str, resource: str | None, detail: str) -> None:
        self.action = action
        self.resource = resource
        self.detail = detail
        where = f" on {resource}" if resource else ""
        super().__init__(f"access denied {action}{where}: {detail}",
                         hint="check the credentials in use (`aws sts get-caller-identity`) and their IAM policy")


class AwsThrottled(AwsError):
    """AWS kept throttling after the SDK's bounded retries."""

    def __init__(self, action: str, code: str, attempts: int) -> None:
        self.action = action
        self.code = code
        self.attempts = attempts
        super().__init__(f"AWS throttled {action} ({code}) after {attempts} attempt(s)",
                         hint="wait a minute and run the command again")


class AwsEndpointError(AwsError):
    """The AWS endpoint (or the emulator behind AWS_ENDPOINT_URL) could not be reached."""

    def __init__(self, action: str, endpoint: str, detail: str) -> None:
        self.action = action
        self.endpoint = endpoint
        super().__init__(f"cannot reach AWS {action}: {detail}",
                         hint=f"check the network and any AWS_ENDPOINT_URL setting (endpoint: {endpoint})")


class AwsNotFound(AwsError):
    """The named resource does not exist."""

    def __init__(self, action: str, resource: str | None, code: str) -> None:
        self.action = action
        self.resource = resource
        self.code = code
        super().__init__(f"{resource or 'resource'} not found {action} ({code})")


class WrongAccount(AwsError):
    """The credentials belong to another account than the one the command works in."""

    def __init__(self, actual: str, expected: str, role: str = "devops") -> None:
        self.actual, self.expected, self.role = actual, expected, role
        super().__init__(f"these credentials are for account {actual}, not the {role} account {expected}",
                         hint=f"use {role}-account credentials, e.g. AWS_PROFILE=<{role} profile>")


class AwsNoErrorCode(AwsError):
    """A server error with no AWS error code: the endpoint does not serve this API (an
    emulator, a proxy), or something between failed."""

    def __init__(self, action: str, service: str, operation: str, status: str, detail: str,
                 endpoint: str | None) -> None:
        self.action, self.service, self.operation, self.status = action, service, operation, status
        where = f"the endpoint {endpoint}" if endpoint else "AWS"
        super().__init__(
            f"AWS error {action}: {service} {operation} answered HTTP {status} ({detail}) with no AWS error code",
            hint=(f"{where} may not implement {service}:{operation} (emulators lack some APIs: "
                  "check AWS_ENDPOINT_URL), or a proxy between failed" if endpoint
                  else "a proxy or load balancer between may have failed; try again in a minute"))


class AwsCallFailed(AwsError):
    """Any other AWS error: the service's code and message, as given."""

    def __init__(self, action: str, code: str, detail: str) -> None:
        self.action = action
        self.code = code
        self.detail = detail
        super().__init__(f"AWS error {action}: {code}: {detail}")


_CREDENTIAL_CODES = frozenset({
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "RequestExpired",
})
_DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
    "Forbidden", "AllAccessDisabled",
})
_THROTTLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "SlowDown", "ProvisionedThroughputExceededException",
    "RequestThrottled", "RequestThrottledException", "LimitExceededException",
})
_NOT_FOUND_CODES = frozenset({"NoSuchBucket", "ResourceNotFoundException", "NotFound", "404", "NoSuchEntity"})


def partition(region: str) -> str:
    """The ARN partition of a region (aws, aws-cn, aws-us-gov), from botocore's endpoint data."""
    from mlcicd import regions

    return regions.partition_of(region) or "aws"


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def translate(exc: BaseException, action: str, resource: str | None = None) -> AwsError:
    """Map a botocore exception to the most specific AwsError. `action` reads after a verb
    ("creating the state bucket"); `resource` names what was acted on."""
    from botocore import exceptions as bx
    from botocore.parsers import ResponseParserError

    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return AwsCredentialsError(f"no AWS credentials found {action}",
                                   hint="set AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, bx.ProfileNotFound):
        return AwsCredentialsError(f"{exc} (while {action})", hint="check AWS_PROFILE and ~/.aws/config")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return AwsEndpointError(action, str(getattr(exc, "kwargs", {}).get("endpoint_url", "?")), str(exc))
    if isinstance(exc, bx.ClientError):
        code = error_code(exc)
        detail = str(exc.response.get("Error", {}).get("Message", "")) or code
        if code.isdigit():  # botocore's stand-in when the body is no AWS error document
            origin = exc.response.get("ResponseMetadata", {}).get(_ORIGIN, {})
            return AwsNoErrorCode(action, origin.get("service", "AWS"), getattr(exc, "operation_name", "?"),
                                  code, _page_title(detail), origin.get("endpoint"))
        if code in _CREDENTIAL_CODES:
            return AwsCredentialsError(f"AWS rejected the credentials {action}: {code}: {detail}",
                                       hint="refresh the credentials (e.g. `aws sso login`) and try again")
        if code in _DENIED_CODES:
            return AwsAccessDenied(action, resource, detail)
        if code in _THROTTLE_CODES:
            return AwsThrottled(action, code, exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1)
        if code in _NOT_FOUND_CODES:
            return AwsNotFound(action, resource, code)
        return AwsCallFailed(action, code, detail)
    if isinstance(exc, ResponseParserError):  # e.g. an HTML page where XML was expected
        return AwsCallFailed(action, "unreadable response", _page_title(str(exc)))
    if isinstance(exc, bx.BotoCoreError):
        return AwsCallFailed(action, type(exc).__name__, str(exc))
    raise TypeError(f"not an AWS error: {exc!r}")


_ORIGIN = "mlcicd:origin"  # set on every response by `client`: which service and endpoint answered


def _page_title(body: str) -> str:
    """An HTML error page as a few words (its <title>), never the page itself."""
    found = re.search(r"<title>(.*?)</title>", body, re.IGNORECASE | re.DOTALL)
    text = html.unescape(found[1]) if found else re.sub(r"<[^>]*>", " ", body)
    return " ".join(text.split())[:80] or "no message"


def _uncoded_server_error(context: Any) -> bool:
    response = context.http_response
    return response is not None and response.status_code >= 500 and str(context.get_error_code() or "").isdigit()


def _bounded_retries(client: Any, max_attempts: int) -> None:
    """botocore's standard retries, except that a server error with no AWS error code is
    tried UNCODED_ATTEMPTS times at most; and every response records which service and
    endpoint answered, for the message if it is an error."""
    from botocore.retries import quota, standard

    class Conditions(standard.StandardRetryConditions):
        def is_retryable(self, context: Any) -> bool:
            if _uncoded_server_error(context) and context.attempt_number >= UNCODED_ATTEMPTS:
                return False
            return super().is_retryable(context)

    events = client.meta.events
    name = client.meta.service_model.service_id.hyphenize()
    retry_quota = standard.RetryQuotaChecker(quota.RetryQuota())
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(retry_checker=Conditions(max_attempts=max_attempts),
                                          retry_backoff=standard.ExponentialBackoff()),
        retry_event_adapter=standard.RetryEventAdapter(), retry_quota=retry_quota)
    unique_id = f"retry-config-{name}"  # the id botocore registers its standard handler under
    events.unregister(f"needs-retry.{name}", unique_id=unique_id)
    events.register(f"needs-retry.{name}", handler.needs_retry, unique_id=unique_id)
    events.register(f"after-call.{name}", retry_quota.release_retry_quota)
    origin = {"service": client.meta.service_model.service_name, "endpoint": client.meta.endpoint_url}

    def record_origin(parsed: dict | None = None, **_: Any) -> None:
        if isinstance(parsed, dict):
            parsed.setdefault("ResponseMetadata", {})[_ORIGIN] = origin

    events.register(f"after-call.{name}", record_origin)


def state_access_hint(config: Config, runtime: Runtime, text: str) -> str | None:
    """What to do when Terraform (or boto3) reports HTTP 403 on the state bucket; None when
    `text` is no 403. Read from the AWS SDK error Terraform prints ("StatusCode: 403 ... api
    error Forbidden")."""
    if not re.search(r"StatusCode: 403\b|api error (AccessDenied|Forbidden)\b|\bAccessDenied\b", text):
        return None
    if runtime.custom_endpoint and config.state.tls_policy:
        return (f"with an emulator ({runtime.s3_endpoint}) the state bucket's EnforcedTLS Deny refuses every "
                f"call, because the emulator ignores its condition: set `state: {{tls_policy: false}}` in "
                f"{config.path.name} and delete the bucket policy "
                f"(`aws s3api delete-bucket-policy --bucket {config.state.bucket}`)")
    return (f"the credentials in use (`aws sts get-caller-identity`) need s3:GetObject, s3:PutObject and "
            f"s3:ListBucket on {config.state.bucket} and use of its KMS key; `mlcicd bootstrap --check` "
            "shows the bucket's settings")


@contextlib.contextmanager
def errors(action: str, resource: str | None = None) -> Iterator[None]:
    """Run a block of AWS calls; any botocore failure leaves it as a specific AwsError."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    try:
        yield
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        raise translate(exc, action, resource) from exc


def endpoint_url(runtime: Runtime, service: str) -> str | None:
    """The endpoint Runtime resolved for `service` (AWS_ENDPOINT_URL_<SERVICE>, else
    AWS_ENDPOINT_URL), under the variable name botocore itself reads for it (e.g.
    AWS_ENDPOINT_URL_CODESTAR_CONNECTIONS)."""
    from botocore import utils

    name = utils.SERVICE_NAME_ALIASES.get(service, service)
    hyphenized = utils.CLIENT_NAME_TO_HYPHENIZED_SERVICE_ID_OVERRIDES.get(name, name)
    return runtime.endpoint(hyphenized.replace("-", "_").upper())


def client_config(config: Config, runtime: Runtime, service: str, max_attempts: int = MAX_ATTEMPTS):
    """The botocore Config every client gets: region, bounded standard retries, and path-style
    S3 addressing when an emulator endpoint is in use (its host is an IP, not a bucket DNS name)."""
    from botocore.config import Config as BotoConfig

    from mlcicd import __version__

    extra: dict[str, Any] = {}
    if service == "s3" and endpoint_url(runtime, service):
        extra["s3"] = {"addressing_style": "path"}
    return BotoConfig(
        region_name=config.region,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        user_agent_extra=f"mlcicd/{__version__}",
        **extra,
    )


def session(config: Config, runtime: Runtime, role_arn: str | None = None,
            session_name: str = DEFAULT_SESSION_NAME) -> boto3.Session:
    """A boto3 Session in the config's region: the caller's credentials (Runtime's profile),
    or, with `role_arn`, credentials of that role obtained through STS and refreshed before they
    expire. Raises AwsCredentialsError / AwsAccessDenied when the role cannot be assumed."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        base = boto3.Session(profile_name=runtime.profile, region_name=config.region)
    except BotoCoreError as exc:
        raise translate(exc, "opening an AWS session") from exc
    if not role_arn:
        return base
    return _assumed(config, runtime, base, role_arn, session_name)


def _assumed(config: Config, runtime: Runtime, base: boto3.Session, role_arn: str,
             session_name: str) -> boto3.Session:
    import boto3
    import botocore.session
    from botocore.credentials import RefreshableCredentials

    sts = base.client("sts", endpoint_url=endpoint_url(runtime, "sts"),
                      config=client_config(config, runtime, "sts"))

    def fetch() -> dict[str, str]:
        with errors(f"assuming role {role_arn}", resource=role_arn):
            creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64],
                                    DurationSeconds=_ROLE_DURATION_SECONDS)["Credentials"]
        expiry = creds["Expiration"]
        if isinstance(expiry, datetime) and expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": expiry.isoformat() if isinstance(expiry, datetime) else str(expiry),
        }

    # Assume eagerly so a wrong role fails here, with its name, not at some later call.
    credentials = RefreshableCredentials.create_from_metadata(
        metadata=fetch(), refresh_using=fetch, method="sts-assume-role"
    )
    core = botocore.session.Session()
    core._credentials = credentials  # botocore has no public setter for refreshable credentials
    return boto3.Session(botocore_session=core, region_name=config.region)


def client(config: Config, runtime: Runtime, service: str, role_arn: str | None = None, *,
           boto_session: boto3.Session | None = None, max_attempts: int = MAX_ATTEMPTS) -> Any:
    """A boto3 client for `service` with mlcicd's region, endpoint and retry settings.
    Pass `boto_session` to share one session (and one role assumption) between clients."""
    from botocore.exceptions import BotoCoreError

    sess = boto_session or session(config, runtime, role_arn)
    try:
        made = sess.client(service, endpoint_url=endpoint_url(runtime, service),
                           config=client_config(config, runtime, service, max_attempts))
    except BotoCoreError as exc:
        raise translate(exc, f"creating a {service} client") from exc
    _bounded_retries(made, max_attempts)
    return made


def caller_account(config: Config, runtime: Runtime, boto_session: boto3.Session | None = None) -> str:
    """The 12-digit account id the credentials belong to (STS GetCallerIdentity)."""
    sts = client(config, runtime, "sts", boto_session=boto_session)
    with errors("identifying the caller (sts:GetCallerIdentity)"):
        return str(sts.get_caller_identity()["Account"])


def devops_session(config: Config, runtime: Runtime) -> boto3.Session:
    """A session whose credentials are checked to belong to the devops account, where the
    state backend, the GitHub connection and the pipeline live."""
    sess = session(config, runtime)
    account = caller_account(config, runtime, sess)
    if account != config.accounts["devops"]:
        raise WrongAccount(account, config.accounts["devops"])
    return sess
