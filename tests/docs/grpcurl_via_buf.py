"""A stand-in for `grpcurl` that runs the same call through `buf curl`, for machines without grpcurl.

tests/docs/test_docs_shell.py puts this script on PATH as `grpcurl` when the real one is missing, so the docs'
grpcurl commands run verbatim in bash (quoting, `$(...)`, `$TOKEN` expanded by the shell) and still reach the
server. It understands the flags the docs use: -plaintext, -d DATA, -H HEADER, and the verbs `list`, `describe
SYMBOL` and `SERVICE/METHOD`. Both tools send the request JSON through protojson, so a request that works here
works with grpcurl. Usage: BUF=/path/to/buf grpcurl_via_buf.py GRPCURL-ARGS...
"""

from __future__ import annotations

import os
import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

FLAGS_WITH_VALUE = {"-d": "--data", "-H": "--header"}


def main(argv: list[str]) -> int:
    passed, positional = split_arguments(argv)
    if not positional:
        sys.exit(f"grpcurl_via_buf: no address in {argv}")
    address, verb = positional[0], positional[1:]
    base = [os.environ["BUF"], "curl", "--protocol", "grpc", "--http2-prior-knowledge", *passed]
    if verb == ["list"]:
        os.execv(base[0], [*base, "--list-services", f"http://{address}"])
    if len(verb) == 2 and verb[0] == "describe":
        return describe(address, verb[1])
    if len(verb) == 1 and "/" in verb[0]:
        os.execv(base[0], [*base, f"http://{address}/{verb[0]}"])
    sys.exit(f"grpcurl_via_buf: unsupported grpcurl command {argv}")


def split_arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """grpcurl's flags translated to buf curl's, and the positional arguments (address, verb...)."""
    passed: list[str] = []
    positional: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "-plaintext":
            continue  # buf curl speaks plaintext to an http:// URL
        if arg in FLAGS_WITH_VALUE:
            passed += [FLAGS_WITH_VALUE[arg], next(args)]
        elif arg.startswith("-"):
            sys.exit(f"grpcurl_via_buf: unsupported flag {arg}")
        else:
            positional.append(arg)
    return passed, positional


def describe(address: str, symbol: str) -> int:
    """`grpcurl describe`: buf curl has no equivalent, so look the symbol up through the server's reflection."""
    with grpc.insecure_channel(address) as channel:
        pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        found = pool.FindFileContainingSymbol(symbol)
        print(f"{symbol} is defined in {found.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
