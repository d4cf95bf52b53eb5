"""The service through server reflection, with a client nobody here wrote and no .proto file at hand: Python's
grpcio and grpcio-reflection, as grpcurl or a platform team's generic tooling would use it.

Starts `modelcopy dev` (a private PostgreSQL cluster, the Rekognition simulator, the service; development
authentication, the caller named in metadata) from the same build as the simulator binary, learns the API from the
reflection service, then asks for a copy and lists it with messages built from the descriptors it was sent.
"""

import os
import queue
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from processes import stop

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE = "modelcopy.v1.ModelCopy"
STARTUP_TIMEOUT_S = 60


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def dev_service():
    """`modelcopy dev` on loopback ports: its API address and the demo copy's arguments it prints."""
    sim_bin = Path(os.environ.get("REKOGNITION_SIM_BIN", REPO_ROOT / "target/debug/rekognition-sim"))
    binary = sim_bin.parent / "modelcopy"
    listen = f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory(prefix="modelcopy-reflection-") as scratch:
        # PostgreSQL runs as the `postgres` user, which must reach the data directory through this one.
        os.chmod(scratch, 0o755)
        log = open(Path(scratch) / "dev.log", "w+")
        process = subprocess.Popen(
            [str(binary), "dev", "--data-dir", str(Path(scratch) / "data"), "--postgres-port", str(free_port()),
             "--listen", listen, "--seed", str(REPO_ROOT / "deploy/sim-seed.json"), "--copy-duration-ms", "1000"],
            stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "RUST_LOG": "warn"})
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
        demo = None
        try:
            while demo is None:
                try:
                    line = lines.get(timeout=STARTUP_TIMEOUT_S)
                except queue.Empty:
                    log.seek(0)
                    pytest.fail(f"modelcopy dev printed no demo line within {STARTUP_TIMEOUT_S} s:\n{log.read()}")
                if "--source-project-arn" in line:
                    demo = line.split()
            yield listen, {demo[i][2:]: demo[i + 1] for i in range(len(demo) - 1) if demo[i].startswith("--")}
        finally:
            stop(process, grace_s=30)
            log.close()


def test_reflection_lists_the_api_and_a_client_without_the_proto_asks_and_lists_a_copy(dev_service):
    address, demo = dev_service
    with grpc.insecure_channel(address) as channel:
        descriptors = ProtoReflectionDescriptorDatabase(channel)
        services = descriptors.get_services()
        assert SERVICE in services, services
        assert "grpc.health.v1.Health" in services, services

        pool = DescriptorPool(descriptors)
        api = pool.FindServiceByName(SERVICE)
        assert {"CopyModelVersion", "GetCopy", "ListCopies", "CancelCopy", "WatchCopy"} <= set(api.methods_by_name)

        def call(method_name, **fields):
            method = api.methods_by_name[method_name]
            request_type = message_factory.GetMessageClass(method.input_type)
            response_type = message_factory.GetMessageClass(method.output_type)
            stub = channel.unary_unary(f"/{SERVICE}/{method_name}", request_serializer=request_type.SerializeToString,
                                       response_deserializer=response_type.FromString)
            return stub(request_type(**fields), metadata=[("x-modelcopy-principal", "alice")], timeout=20)

        output_type = message_factory.GetMessageClass(pool.FindMessageTypeByName("modelcopy.v1.OutputConfig"))
        asked = call("CopyModelVersion", source_project_arn=demo["source-project-arn"],
                     source_project_version_arn=demo["source-version-arn"],
                     destination_project_arn=demo["destination-project-arn"], version_name="reflected-1",
                     output_config=output_type(s3_bucket="demo-model-output"), idempotency_token="reflected-1")
        copy_id = asked.copy.copy_id
        assert copy_id

        listed = call("ListCopies")
        assert copy_id in [copy.copy_id for copy in listed.copies], listed

        with pytest.raises(grpc.RpcError) as refused:
            call("GetCopy", copy_id="not-a-copy-id")
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "copy_id" in refused.value.details()
