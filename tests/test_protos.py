"""The committed gRPC modules are exactly what `./dev protos` generates from protos/."""

from satgate_dev import protogen


def test_generated_code_is_current(tmp_path):
    generated = protogen.generate(tmp_path)
    assert generated, "no protos found"
    for path in protogen.generated_paths():
        committed = protogen.ROOT / path
        assert committed.exists(), f"{path} is not committed: run ./dev protos"
        assert (tmp_path / path).read_bytes() == committed.read_bytes(), f"{path} is stale: run ./dev protos"


def test_a_changed_proto_would_be_noticed(tmp_path, monkeypatch):
    """The check above can fail: editing a proto changes the output."""
    protos = tmp_path / "protos"
    source = protogen.PROTOS / "satgate_api" / "mint" / "v1" / "mint.proto"
    target = protos / source.relative_to(protogen.PROTOS)
    target.parent.mkdir(parents=True)
    edited = source.read_text().replace("string policy = 7;", "string policy = 7;\n  string extra = 99;")
    assert edited != source.read_text()
    target.write_text(edited)
    monkeypatch.setattr(protogen, "PROTOS", protos)
    out = tmp_path / "out"
    protogen.generate(out)
    changed = [p for p in protogen.generated_paths() if (out / p).read_bytes() != (protogen.ROOT / p).read_bytes()]
    assert changed
