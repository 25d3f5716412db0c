"""Answer the operations moto lacks (e.g. CodePipeline's get_pipeline_state and
put_approval_result, which it answers 500) from a queue, through botocore's Stubber, in any
process: the queue is a JSON file named by MLCICD_TEST_STUBS, consumed as calls arrive, so a
test can check afterwards that each expected call came (with the expected parameters: Stubber
checks them, and the answer, against the real API model). Other operations reach moto.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.aws_calls import (
    _PARAMS,
    SERVICE_KEYS,
    _access_key,
    add_handlers,
    keep_params,
    remove_handlers,
    service_client,
)

VARIABLE = "MLCICD_TEST_STUBS"
ANY_VALUE = "<any>"


def _any(value: Any) -> Any:
    from botocore.stub import ANY

    if value == ANY_VALUE:
        return ANY
    if isinstance(value, dict):
        return {k: _any(v) for k, v in value.items()}
    return value


def _answer(model: Any, context: dict, request_signer: Any = None, **_: Any):
    from botocore import xform_name

    path = os.environ.get(VARIABLE)
    if not path or _access_key(request_signer) in SERVICE_KEYS:
        return None
    queue = json.loads(Path(path).read_text())
    service = model.service_model.service_name
    operation = xform_name(model.name)
    if not queue or (queue[0]["service"], queue[0]["operation"]) != (service, operation):
        if any((q["service"], q["operation"]) == (service, operation) for q in queue):
            raise AssertionError(f"{service}.{operation} called out of the expected order: {queue[0]}")
        return None
    entry = queue.pop(0)
    Path(path).write_text(json.dumps(queue))
    from botocore.awsrequest import AWSResponse
    from botocore.stub import Stubber

    twin = service_client(service, request_signer.region_name, os.environ.get("AWS_ENDPOINT_URL", ""))
    with Stubber(twin) as stub:
        stub.add_response(operation, entry["response"], _any(entry.get("expected_params")))
        parsed = getattr(twin, operation)(**context[_PARAMS])
    return AWSResponse("", 200, {}, None), parsed


HANDLERS = [("before-parameter-build", keep_params), ("before-call", _answer)]


def install() -> None:
    add_handlers(HANDLERS)


def uninstall() -> None:
    remove_handlers(HANDLERS)
