"""Record every AWS API call botocore makes, with the principal whose credentials sign it.

Installed through botocore's own extension point, the handlers every new botocore session
registers (`botocore.handlers.BUILTIN_HANDLERS`), so it sees the clients mlcicd builds, the STS
client of a role assumption, and calls a Stubber answers. The caller is read from the
credentials the client signs with: the base credentials stand for `base_principal`, and each
AssumeRole maps the access key it returns to the role it assumed — as AWS itself attributes a
request. Each call becomes one JSON line in `log`, so a CLI run in a child process records too
(see `install_from_environ`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_VARIABLE = "MLCICD_TEST_CALL_LOG"
PRINCIPAL_VARIABLE = "MLCICD_TEST_BASE_PRINCIPAL"
# Clients the tests use to play a service (SageMaker running a pipeline) or to set up an
# account sign with this key, or with keys assumed through it, and are not recorded: they are
# AWS, not the caller.
SERVICE_KEY = "AKIDPLAYINGTHESERVICE"
SERVICE_KEYS = {SERVICE_KEY}
_PARAMS = "mlcicd_test_api_params"
_CALLER = "mlcicd_test_caller_key"


def keep_params(params: dict, context: dict, **_: Any) -> None:
    context[_PARAMS] = json.loads(json.dumps(params, default=str))


def service_client(service: str, region: str, endpoint: str, account: str | None = None) -> Any:
    """A client acting for AWS itself, in `account` (moto scopes resources by the account of
    the role whose credentials sign)."""
    import boto3

    keys = {"aws_access_key_id": SERVICE_KEY, "aws_secret_access_key": "service"}
    if account:
        sts = boto3.client("sts", region_name=region, endpoint_url=endpoint, **keys)
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/aws-service", RoleSessionName="service")
        creds = creds["Credentials"]
        SERVICE_KEYS.add(creds["AccessKeyId"])
        keys = {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"]}
    return boto3.client(service, region_name=region, endpoint_url=endpoint, **keys)


@dataclass(frozen=True)
class Call:
    principal: str
    signing_name: str  # the IAM service prefix (botocore's signingName, else endpointPrefix)
    operation: str
    params: dict[str, Any]
    region: str


def _access_key(request_signer: Any) -> str:
    credentials = getattr(request_signer, "_credentials", None)  # botocore keeps them private
    return credentials.get_frozen_credentials().access_key if credentials is not None else ""


class Recorder:
    def __init__(self, log: Path, base_principal: str) -> None:
        self.log = log
        self.base_principal = base_principal
        self.assumed: dict[str, str] = {}

    def handlers(self) -> list[tuple[str, Any]]:
        return [("before-parameter-build", keep_params), ("before-call", self._record),
                ("after-call.sts.AssumeRole", self._assumed)]

    def _record(self, model: Any, context: dict, request_signer: Any = None, **_: Any) -> None:
        key = _access_key(request_signer)
        context[_CALLER] = key
        if key in SERVICE_KEYS:
            return
        service = model.service_model
        call = {"principal": self.assumed.get(key, self.base_principal),
                "signing_name": service.signing_name or service.endpoint_prefix,
                "operation": model.name, "params": context.get(_PARAMS, {}),
                "region": getattr(request_signer, "region_name", "")}
        with self.log.open("a") as fh:
            fh.write(json.dumps(call) + "\n")

    def _assumed(self, parsed: dict, context: dict, **_: Any) -> None:
        if "Credentials" in parsed and context.get(_CALLER) in SERVICE_KEYS:
            SERVICE_KEYS.add(parsed["Credentials"]["AccessKeyId"])
        elif "Credentials" in parsed:
            self.assumed[parsed["Credentials"]["AccessKeyId"]] = context.get(_PARAMS, {}).get("RoleArn", "")


def add_handlers(found: list[tuple[str, Any]]) -> None:
    """Register (event, handler) pairs with every botocore session created from now on."""
    from botocore import handlers

    handlers.BUILTIN_HANDLERS.extend(found)


def remove_handlers(found: list[tuple[str, Any]]) -> None:
    from botocore import handlers

    for handler in found:
        while handler in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.remove(handler)


def install(log: Path, base_principal: str) -> Recorder:
    """Record from every botocore session created from now on (in this process)."""
    recorder = Recorder(log, base_principal)
    add_handlers(recorder.handlers())
    return recorder


def uninstall(recorder: Recorder) -> None:
    remove_handlers(recorder.handlers())


def install_from_environ() -> Recorder | None:
    log = os.environ.get(LOG_VARIABLE)
    return install(Path(log), os.environ.get(PRINCIPAL_VARIABLE, "")) if log else None


def read(log: Path) -> list[Call]:
    if not log.exists():
        return []
    return [Call(**json.loads(line)) for line in log.read_text().splitlines() if line.strip()]
