"""The .proto files a client of the service compiles against, gathered in one folder.

Our protos import google/type/date.proto (and clients reading rich errors want google/rpc's
status and error details), which live in the googleapis common protos, not in protoc's or
protobufjs' bundled well-known types; clients in other languages failed to find them. This
writes our files and those imports under one include root, so `protoc -I DIR`,
`grpcurl -import-path DIR` and `@grpc/proto-loader` with `includeDirs: [DIR]` just work.
google/protobuf/*.proto (Timestamp, Any, Duration) are left out: every protobuf toolchain
bundles them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .embedded import protos_dir

# Files from the googleapis common protos, by include path.
GOOGLEAPIS = ("google/type/date.proto", "google/rpc/status.proto", "google/rpc/error_details.proto",
              "google/rpc/code.proto")


def googleapis_root() -> Path:
    """The include root of the installed googleapis-common-protos package."""
    import google.type.date_pb2 as date_pb2  # installed with googleapis-common-protos

    return Path(date_pb2.__file__).parents[2]


def write_protos(dest: Path) -> list[Path]:
    """Copy every .proto a client needs under `dest` (include paths kept); returns the files."""
    ours = protos_dir()
    sources = [(p.relative_to(ours), p) for p in sorted((ours / "cptrules" / "v1").glob("*.proto"))]
    root = googleapis_root()
    for name in GOOGLEAPIS:
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(f"{name} is missing from the googleapis-common-protos installation")
        sources.append((Path(name), path))
    written = []
    for relative, source in sources:
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    return written
