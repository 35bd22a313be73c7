"""Command-line clients of a running server (health probe, conformance vectors): gRPC shells."""
