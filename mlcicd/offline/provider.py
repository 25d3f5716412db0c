"""The stand-in hashicorp/aws provider: a plugin-protocol-v6 server Terraform starts itself.

Terraform launches it (through the launcher `preview` writes) with go-plugin's handshake: we
serve gRPC over TLS on a unix socket and print `1|6|unix|SOCKET|grpc|CERT` on stdout. The
schema response is serialised once per wheel version and cached as bytes, so Terraform gets
the whole hashicorp/aws schema without a second of Python work. Planning marks unset
computed attributes unknown; apply and import are refused: this provider never calls AWS.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import functools
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcicd.offline import datasources, values

MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
# Bump when the serialised schema changes shape, so cached bytes are rebuilt.
WIRE_FORMAT = 1
OFFLINE = "offline preview"


def schema_path(cache_dir: Path) -> Path:
    """The serialised GetProviderSchema response, built once per wheel version and cached."""
    from mlcicd import awsschema
    from mlcicd.fsutil import atomic_write

    path = cache_dir / f"aws-provider-schema-{awsschema.wheel_version()}-f{awsschema.FORMAT}-w{WIRE_FORMAT}.pb"
    if not path.is_file():
        atomic_write(path, build_schema_response(awsschema.load_schema(cache_dir)).SerializeToString())
    return path


def tls_path(cache_dir: Path, now: float | None = None) -> Path:
    """A self-signed certificate and key for go-plugin's TLS, made once a month and cached
    (readable by the owner only), so that no provider start pays for key generation."""
    from mlcicd.fsutil import atomic_write

    path = cache_dir / "offline-provider-tls.json"
    now = time.time() if now is None else now
    try:
        if json.loads(path.read_text())["not_after"] > now + 86400:
            return path
    except (OSError, ValueError, KeyError, TypeError):
        pass
    cert_der, cert_pem, key_pem = _self_signed(days=30)
    record = {"cert_der": base64.b64encode(cert_der).decode(), "cert_pem": cert_pem.decode(),
              "key_pem": key_pem.decode(), "not_after": now + 30 * 86400}
    atomic_write(path, json.dumps(record).encode(), mode=0o600)
    return path


def build_schema_response(schema: dict):
    from tf.gen import tfplugin_pb2 as pb

    def block(b: dict):
        return pb.Schema.Block(
            attributes=[
                pb.Schema.Attribute(
                    name=name, type=json.dumps(a["type"]).encode(), required=a.get("required", False),
                    optional=a.get("optional", False), computed=a.get("computed", False),
                    sensitive=a.get("sensitive", False))
                for name, a in sorted(b.get("attributes", {}).items())
            ],
            block_types=[
                pb.Schema.NestedBlock(
                    type_name=name, block=block(n["block"]),
                    nesting=pb.Schema.NestedBlock.NestingMode.Value(n["nesting_mode"].upper()),
                    min_items=n.get("min_items", 0), max_items=n.get("max_items", 0))
                for name, n in sorted(b.get("block_types", {}).items())
            ],
        )

    def schemas(kind: str) -> dict:
        return {name: pb.Schema(version=s["version"], block=block(s["block"]))
                for name, s in schema[kind].items()}

    return pb.GetProviderSchema.Response(
        provider=pb.Schema(block=block(schema["provider"]["block"])),
        resource_schemas=schemas("resource_schemas"),
        data_source_schemas=schemas("data_source_schemas"),
        server_capabilities=pb.ServerCapabilities(plan_destroy=False),
    )


def _dynamic(value) -> Any:
    if value.msgpack:
        return values.decode(value.msgpack)
    if value.json:
        return json.loads(value.json)
    return None


def block_dict(block) -> dict:
    """A protobuf schema block in the `providers schema -json` shape `values` works on."""
    return {
        "attributes": {a.name: {"type": json.loads(a.type), "computed": a.computed} for a in block.attributes},
        "block_types": {b.type_name: {"nesting_mode": NESTING[b.nesting], "block": block_dict(b.block)}
                        for b in block.block_types},
    }


NESTING = {1: "single", 2: "list", 3: "set", 4: "map", 5: "group"}


class StandIn:
    """The Provider service's methods; each takes a request and returns a response.

    With `types_file` (a JSON list of the aws_* types a configuration uses, written by
    `preview` after init), only those schemas are served: Terraform checks every schema it
    receives, and all of hashicorp/aws takes it over a second per provider start."""

    def __init__(self, schema: Path, who: datasources.Identity, types_file: Path | None = None) -> None:
        from tf.gen import tfplugin_pb2

        self.pb = tfplugin_pb2
        self.schema = schema
        self.who = who
        self.types_file = types_file

    @functools.cached_property
    def full(self):
        return self.pb.GetProviderSchema.Response.FromString(self.schema.read_bytes())

    @functools.cached_property
    def served(self) -> bytes:
        try:
            wanted = set(json.loads(self.types_file.read_text())) if self.types_file else None
        except (OSError, ValueError):
            wanted = None
        if wanted is None:
            return self.schema.read_bytes()
        full = self.full
        subset = self.pb.GetProviderSchema.Response(provider=full.provider,
                                                    server_capabilities=full.server_capabilities)
        for name in wanted:
            if name in full.resource_schemas:
                subset.resource_schemas[name].CopyFrom(full.resource_schemas[name])
            if name in full.data_source_schemas:
                subset.data_source_schemas[name].CopyFrom(full.data_source_schemas[name])
        return subset.SerializeToString()

    def _block(self, kind: str, type_name: str) -> dict:
        return block_dict(getattr(self.full, kind)[type_name].block)

    def _error(self, summary: str, detail: str = ""):
        return self.pb.Diagnostic(severity=self.pb.Diagnostic.ERROR, summary=summary, detail=detail)

    def _value(self, value: Any):
        return self.pb.DynamicValue(msgpack=values.encode(value))

    def GetMetadata(self, request):
        pb = self.pb
        return pb.GetMetadata.Response(
            server_capabilities=pb.ServerCapabilities(plan_destroy=False),
            resources=[pb.GetMetadata.ResourceMetadata(type_name=n) for n in self.full.resource_schemas],
            data_sources=[pb.GetMetadata.DataSourceMetadata(type_name=n) for n in self.full.data_source_schemas],
        )

    def GetProviderSchema(self, request) -> bytes:
        return self.served

    def ValidateProviderConfig(self, request):
        return self.pb.ValidateProviderConfig.Response()

    def ValidateResourceConfig(self, request):
        return self.pb.ValidateResourceConfig.Response()

    def ValidateDataResourceConfig(self, request):
        return self.pb.ValidateDataResourceConfig.Response()

    def ConfigureProvider(self, request):
        config = _dynamic(request.config) or {}
        region = config.get("region")
        if isinstance(region, str) and region:
            # A provider block's own region wins, as it does with the real provider.
            self.who = datasources.Identity(self.who.account, region, self.who.partition)
        return self.pb.ConfigureProvider.Response()

    def UpgradeResourceState(self, request):
        # Offline state is always fresh; a state written by this provider needs no upgrade.
        return self.pb.UpgradeResourceState.Response(
            upgraded_state=self.pb.DynamicValue(json=request.raw_state.json or b"null"))

    def ReadResource(self, request):
        return self.pb.ReadResource.Response(new_state=request.current_state, private=request.private)

    def PlanResourceChange(self, request):
        block = self._block("resource_schemas", request.type_name)
        proposed = _dynamic(request.proposed_new_state)
        return self.pb.PlanResourceChange.Response(
            planned_state=self._value(values.plan_unknowns(block, proposed)),
            planned_private=request.prior_private,
            # Like the real (SDKv2-based) provider: small plan inconsistencies are tolerated.
            legacy_type_system=True,
        )

    def ApplyResourceChange(self, request):
        return self.pb.ApplyResourceChange.Response(diagnostics=[self._error(
            f"{request.type_name}: apply is not offered in an {OFFLINE}",
            "This hashicorp/aws provider is mlcicd's offline stand-in; it never calls AWS. "
            "Plan and apply without --offline to change real infrastructure.")])

    def ImportResourceState(self, request):
        return self.pb.ImportResourceState.Response(diagnostics=[self._error(
            f"{request.type_name}: import is not offered in an {OFFLINE}")])

    def MoveResourceState(self, request):
        return self.pb.MoveResourceState.Response(diagnostics=[self._error(
            f"{request.target_type_name}: moving state is not offered in an {OFFLINE}")])

    def ReadDataSource(self, request):
        block = self._block("data_source_schemas", request.type_name)
        config = _dynamic(request.config) or {}
        state = datasources.read(request.type_name, block, config, self.who)
        return self.pb.ReadDataSource.Response(state=self._value(state))

    def GetFunctions(self, request):
        return self.pb.GetFunctions.Response()

    def StopProvider(self, request):
        return self.pb.StopProvider.Response()


def _guarded(method: Callable, response_type) -> Callable:
    """A handler that turns a Python exception into an error diagnostic Terraform shows,
    rather than an opaque gRPC failure."""

    def handler(request, context):
        try:
            return method(request)
        except Exception as exc:  # reported to Terraform as an error, not swallowed
            if response_type is None or "diagnostics" not in response_type.DESCRIPTOR.fields_by_name:
                raise
            from tf.gen import tfplugin_pb2 as pb

            return response_type(diagnostics=[pb.Diagnostic(
                severity=pb.Diagnostic.ERROR, summary=f"mlcicd offline provider: {type(exc).__name__}",
                detail=str(exc))])

    return handler


def _self_signed(days: int) -> tuple[bytes, bytes, bytes]:
    """(certificate DER, certificate PEM, key PEM), for localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.DER), cert.public_bytes(serialization.Encoding.PEM), key_pem


def serve(stand_in: StandIn, tls: Path) -> None:
    from concurrent import futures

    import grpc
    from tf.gen import grpc_controller_pb2, grpc_controller_pb2_grpc, grpc_stdio_pb2_grpc
    from tf.gen import tfplugin_pb2 as pb

    done = threading.Event()

    def serialize(response) -> bytes:
        return response if isinstance(response, bytes) else response.SerializeToString()

    handlers = {}
    for rpc in pb.DESCRIPTOR.services_by_name["Provider"].methods:
        method = getattr(stand_in, rpc.name, None)
        if method is None:
            continue
        request_type = getattr(pb, rpc.input_type.full_name.split(".")[1]).Request
        response_type = getattr(pb, rpc.output_type.full_name.split(".")[1]).Response
        handlers[rpc.name] = grpc.unary_unary_rpc_method_handler(
            _guarded(method, response_type), request_deserializer=request_type.FromString,
            response_serializer=serialize)

    class Controller(grpc_controller_pb2_grpc.GRPCControllerServicer):
        def Shutdown(self, request, context):
            done.set()
            return grpc_controller_pb2.Empty()

    class Stdio(grpc_stdio_pb2_grpc.GRPCStdioServicer):
        def StreamStdio(self, request, context):
            return iter(())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tfplugin6.Provider", handlers),))
    grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(Controller(), server)
    grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(Stdio(), server)
    material = json.loads(tls.read_text())
    credentials = grpc.ssl_server_credentials([(material["key_pem"].encode(), material["cert_pem"].encode())])
    with tempfile.TemporaryDirectory(prefix="mlcicd-aws-") as tmp:
        socket_path = f"{tmp}/plugin.sock"
        server.add_secure_port(f"unix://{socket_path}", credentials)
        server.start()
        print(f"1|6|unix|{socket_path}|grpc|{material['cert_der'].rstrip('=')}", flush=True)
        # Terraform normally says Shutdown; if it died without a word, stop when orphaned.
        parent = os.getppid()
        while not done.wait(1.0) and os.getppid() == parent:
            pass
        # Long enough to send the Shutdown reply; Terraform waits for this process to exit.
        server.stop(grace=0.05).wait()


def main(argv: list[str] | None = None) -> int:
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        print("This is mlcicd's offline stand-in for the hashicorp/aws Terraform provider; "
              "Terraform starts it. Try `mlcicd validate ENV --offline`.", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(prog="mlcicd-offline-aws")
    parser.add_argument("--account", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--partition", default="aws")
    parser.add_argument("--schema", required=True, type=Path, help="the serialised schema (schema_path)")
    parser.add_argument("--tls", required=True, type=Path, help="certificate and key (tls_path)")
    parser.add_argument("--types-file", type=Path)
    args = parser.parse_args(argv)
    who = datasources.Identity(args.account, args.region, args.partition)
    serve(StandIn(args.schema, who, args.types_file), args.tls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
