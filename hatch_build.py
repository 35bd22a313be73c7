"""Generate the gRPC Python modules from protos/ at build time.

protos/ is the only source of truth: the *_pb2 modules are written into
src/cptrules/v1/ (git-ignored) and shipped as build artifacts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _include_dirs() -> list[str]:
    """Proto include paths: grpc_tools' well-known types and googleapis' common protos."""
    import grpc_tools
    import google.type.date_pb2 as date_pb2  # from googleapis-common-protos

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    googleapis_root = Path(date_pb2.__file__).parents[2]
    return [str(well_known), str(googleapis_root)]


def generate(root: Path) -> list[Path]:
    """Run protoc over protos/ and return the files it wrote."""
    proto_root = root / "protos"
    out = root / "src"
    protos = sorted(proto_root.rglob("*.proto"))
    with_services = [p for p in protos if "\nservice " in p.read_text()]
    base = [sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={proto_root}"]
    base += [f"--proto_path={p}" for p in _include_dirs()]
    relative = [str(p.relative_to(proto_root)) for p in protos]
    subprocess.run([*base, f"--python_out={out}", f"--pyi_out={out}", *relative], check=True, cwd=proto_root)
    # gRPC stubs only where a service is declared, so message-only modules never import grpc.
    subprocess.run([*base, f"--grpc_python_out={out}",
                    *[str(p.relative_to(proto_root)) for p in with_services]], check=True, cwd=proto_root)
    written = []
    for proto in protos:
        stem = out / proto.relative_to(proto_root).with_suffix("")
        suffixes = ("_pb2.py", "_pb2.pyi") + (("_pb2_grpc.py",) if proto in with_services else ())
        for suffix in suffixes:
            written.append(stem.with_name(stem.name + suffix))
    for folder in sorted({path.parent for path in written}):
        package_init = folder / "__init__.py"
        if not package_init.exists():
            package_init.write_text('"""Generated protobuf modules (built from protos/)."""\n')
        written.append(package_init)
    return written


class CustomBuildHook(BuildHookInterface):
    """Hatch build hook: protoc before packaging."""

    def initialize(self, version: str, build_data: dict) -> None:
        root = Path(self.root)
        for path in generate(root):
            build_data["artifacts"].append(str(path.relative_to(root)))


if __name__ == "__main__":
    generate(Path(__file__).parent)
