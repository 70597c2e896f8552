"""Generated gRPC stubs for verdict.v1 (regenerate with `python scripts/gen_protos.py`)."""
