"""The floor: the same threaded grpcio server as `verdict serve`, answering one unary RPC that returns its input.

    python benchmarks/echo_server.py [--port 0] [--processes N]

It takes and returns a google.protobuf.Struct, so the server does the same protobuf work on the facts as Verdict
does, and nothing else: no interceptor, no servicer logic. Its pool size, concurrency limit and channel options are
read from Verdict's own ServeConfig defaults, so the two servers differ only in what Verdict adds. Never tune it: it
is the limit Verdict is measured against.

Prints `echo: serving on HOST:PORT` on stdout once it accepts calls; runs until SIGTERM/SIGINT. With --processes N
it forks N workers sharing a fixed port with SO_REUSEPORT, like `verdict serve --processes N` (no gRPC object before
the fork).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from concurrent import futures

METHOD = "/bench.Echo/Echo"
SERVICE, _, NAME = METHOD.strip("/").partition("/")


def build_server(shared_port: bool):
    import grpc
    from google.protobuf.struct_pb2 import Struct

    from verdict_server.service.config import ServeConfig

    config = ServeConfig()
    options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.so_reuseport", 1 if shared_port else 0),
        ("grpc.keepalive_time_ms", int(config.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout_s * 1000)),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="echo-rpc"),
        options=options,
        maximum_concurrent_rpcs=config.concurrency_limit(),
    )
    echo = grpc.unary_unary_rpc_method_handler(
        lambda request, _context: request,
        request_deserializer=Struct.FromString,
        response_serializer=Struct.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {NAME: echo}),))
    return server


def serve(host: str, port: int, shared_port: bool, announce: bool) -> int:
    server = build_server(shared_port)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise SystemExit(f"echo: cannot listen on {host}:{port}")
    server.start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    if announce:
        print(f"echo: serving on {host}:{bound}", flush=True)
    stopping.wait()
    server.stop(1).wait()
    return 0


def supervise(host: str, port: int, processes: int) -> int:
    pids = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 1
            try:
                code = serve(host, port, shared_port=True, announce=False)
            finally:
                os._exit(code)
        pids.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # it exited on its own meanwhile
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    print(f"echo: serving on {host}:{port} with {processes} processes (pids {' '.join(map(str, pids))})", flush=True)
    for pid in pids:
        os.waitpid(pid, 0)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="The echo floor of the benchmark suite.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    if args.processes > 1:
        if args.port == 0:
            parser.error("--processes > 1 needs a fixed --port (the workers share it with SO_REUSEPORT)")
        return supervise(args.host, args.port, args.processes)
    return serve(args.host, args.port, shared_port=False, announce=True)


if __name__ == "__main__":
    sys.exit(main())
