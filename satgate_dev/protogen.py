"""Compile protos/ into importable modules (`./dev protos`); a test checks the committed output is current."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def proto_files() -> list[Path]:
    return sorted(PROTOS.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Returns the files written. Package __init__.py files are ours, not generated."""
    import grpc_tools  # noqa: PLC0415 - a dev-time tool
    from grpc_tools import protoc  # noqa: PLC0415

    well_known = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto, shipped with grpcio-tools
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")
    return [out_dir / path for path in generated_paths()]


def generated_paths() -> list[Path]:
    """Where protoc puts each proto's modules, relative to the output root."""
    paths = []
    for proto in proto_files():
        stem = proto.relative_to(PROTOS).with_suffix("")
        paths += [stem.with_name(stem.name + suffix) for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")]
    return paths


def main() -> None:
    written = generate(ROOT)
    for path in written:
        print(path.relative_to(ROOT))
    sys.exit(0)


if __name__ == "__main__":
    main()
