"""Weights loading and the registry: real checkpoints load, bad or hostile files never do.

The two official FMEN-S ×4 checkpoints are read from ``../shared`` beside the repository and
are never copied into it; tests that need them are skipped when they are absent.
"""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import random
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from fmen_gui.arch.detect import load_model
from fmen_gui.arch.fmen import FMEN, preset_config
from fmen_gui.engine.images import ImageData, write_image
from fmen_gui.errors import MissingWeightsError, WeightsError
from fmen_gui.weights import registry
from fmen_gui.weights.files import atomic_write_bytes, copy_atomically, sha256_file
from fmen_gui.weights.loading import (
    UNSAFE_MESSAGE,
    load_weights,
    read_state_dict,
    save_safetensors,
)

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_DIR = Path(__file__).parents[1].parent / "shared" / "weights" / "official"
NJUJET = OFFICIAL_DIR / "fmen_s_x4_njujet.pt"
NTIRE = OFFICIAL_DIR / "fmen_s_x4_ntire2022.pth"
NJUJET_SHA256 = "d5534eba1feacfdd4043d9175d3bf0730b1ab4c91ba5c3f40a2282cd496fb4a5"
FMEN_S_PARAMS = 341_066


def require(path: Path) -> Path:
    """Skip (not fail) where the shared official checkpoints are not provided."""
    if not path.is_file():
        pytest.skip(f"official checkpoint {path.name} not available under {path.parent}")
    return path


@pytest.fixture(scope="module")
def official_state() -> dict[str, torch.Tensor]:
    """A genuine FMEN-S ×4 state dict: the real one when shared, else a freshly built network's.

    Container and bad-file tests only need the right keys and shapes, so they still run on a
    machine without the shared checkpoints.
    """
    if NJUJET.is_file():
        return read_state_dict(NJUJET)
    return FMEN(preset_config("fmen-s", 4), deploy=True).state_dict()


@pytest.fixture(autouse=True)
def isolated_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user data folder or the repository's weights from a test."""
    monkeypatch.setenv(registry.ENV_DATA_DIR, str(tmp_path / "data"))
    monkeypatch.setenv(registry.ENV_WEIGHTS_DIR, str(tmp_path / "bundled"))


def assert_one_line(exc: BaseException) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text


# --------------------------------------------------------------------------- real files


@pytest.mark.parametrize("path", [NJUJET, NTIRE], ids=["njujet", "ntire2022"])
def test_official_checkpoints_load_as_fmen_s_x4(path: Path) -> None:
    model, desc = load_weights(require(path))
    assert (desc.key, desc.name, desc.scale) == ("fmen-s", "FMEN-S", 4)
    assert desc.params == FMEN_S_PARAMS
    assert sum(p.numel() for p in model.parameters()) == FMEN_S_PARAMS


def test_official_download_matches_its_pinned_hash() -> None:
    assert sha256_file(require(NJUJET)) == NJUJET_SHA256


def test_safetensors_round_trip(tmp_path: Path, official_state: dict) -> None:
    model, _ = load_model(official_state)
    out = tmp_path / "fmen_s_x4.safetensors"
    save_safetensors(model, out, {"model": "fmen-s", "scale": "4"})
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "data") == [out.name]
    with safe_open(str(out), framework="pt") as fh:
        assert fh.metadata() == {"model": "fmen-s", "scale": "4"}
    again, desc = load_weights(out)
    assert desc.params == FMEN_S_PARAMS
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[key]), key


def test_save_safetensors_rejects_non_text_metadata(tmp_path: Path, official_state: dict) -> None:
    with pytest.raises(WeightsError):
        save_safetensors(official_state, tmp_path / "x.safetensors", {"scale": 4})  # type: ignore[dict-item]
    assert not list(tmp_path.glob("*.safetensors"))


# --------------------------------------------------------------------------- containers

Wrap = Callable[[dict[str, torch.Tensor]], object]
LINEAR = torch.nn.Linear(3, 2).state_dict()
WRAPPERS: dict[str, Wrap] = {
    "plain": lambda sd: sd,
    "params_ema": lambda sd: {"params_ema": sd, "params": LINEAR, "iter": 100},
    "params": lambda sd: {"params": sd},
    "state_dict": lambda sd: {"state_dict": sd, "epoch": 7, "optimizer": {"lr": 1e-3}},
    "model": lambda sd: {"model": sd},
    "net": lambda sd: {"net": sd},
    "model_state_dict": lambda sd: {"model_state_dict": sd},
    "nested-2": lambda sd: {"model": {"state_dict": sd}},
    "module-prefix": lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
}


@pytest.mark.parametrize("kind", list(WRAPPERS))
def test_containers_unwrap(kind: str, tmp_path: Path, official_state: dict) -> None:
    path = tmp_path / "wrapped.pth"
    torch.save(WRAPPERS[kind](official_state), path)
    _, desc = load_weights(path)
    assert (desc.key, desc.scale, desc.params) == ("fmen-s", 4, FMEN_S_PARAMS)


def test_containers_are_not_searched_deeper_than_two_levels(tmp_path: Path, official_state: dict) -> None:
    path = tmp_path / "deep.pt"
    torch.save({"model": {"net": {"state_dict": official_state}}}, path)
    with pytest.raises(WeightsError, match="not a state dict"):
        read_state_dict(path)


def test_safetensors_with_torch_extension_still_loads(tmp_path: Path, official_state: dict) -> None:
    path = tmp_path / "renamed.pt"
    save_safetensors(official_state, path)
    assert load_weights(path)[1].key == "fmen-s"


# --------------------------------------------------------------------------- hostile files


class TouchOnLoad:
    """Unpickling this would create a file: the classic code-execution payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (pathlib.Path.touch, (self.marker,))


class SystemOnLoad:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (os.system, (f"touch {self.marker}",))


def _torch_save(obj: object, path: Path) -> None:
    torch.save({"head.weight": torch.zeros(1), "payload": obj}, path)


def _legacy_save(obj: object, path: Path) -> None:
    torch.save(obj, path, _use_new_zipfile_serialization=False)


def _pickle_dump(obj: object, path: Path) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


@pytest.mark.parametrize("payload", [TouchOnLoad, SystemOnLoad])
@pytest.mark.parametrize("writer", [_torch_save, _legacy_save, _pickle_dump])
def test_malicious_pickle_is_refused_without_running(
    payload: type, writer: Callable[[object, Path], None], tmp_path: Path
) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pth"
    writer(payload(marker), path)
    with pytest.raises(WeightsError) as info:
        load_weights(path)
    assert str(info.value) == UNSAFE_MESSAGE
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # pytest resets the module's filter
def test_modern_protocol_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump(TouchOnLoad(marker), fh, protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(WeightsError):
        load_weights(path)
    assert not marker.exists()


def test_pickled_module_is_refused_as_unsafe(tmp_path: Path) -> None:
    path = tmp_path / "whole_model.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(WeightsError, match="unsafe pickle"):
        read_state_dict(path)


# --------------------------------------------------------------------------- broken files


def _bad_files(tmp: Path, state: dict[str, torch.Tensor]) -> dict[str, tuple[Path, str]]:
    """Each case: (path, a fragment the one-line message must contain)."""
    cases: dict[str, tuple[Path, str]] = {}

    def save(name: str, obj: object, fragment: str) -> None:
        torch.save(obj, tmp / name)
        cases[name] = (tmp / name, fragment)

    (tmp / "empty.pt").write_bytes(b"")
    cases["empty"] = (tmp / "empty.pt", "empty")
    if NJUJET.is_file():
        data = NJUJET.read_bytes()
    else:
        torch.save(state, tmp / "whole.pt")
        data = (tmp / "whole.pt").read_bytes()
    (tmp / "truncated.pt").write_bytes(data[: len(data) // 2])
    cases["truncated"] = (tmp / "truncated.pt", "corrupt")
    noise = random.Random(1).randbytes(4096)
    (tmp / "noise.pth").write_bytes(b"\x13" + noise)
    cases["random-bytes"] = (tmp / "noise.pth", "unrecognised")
    (tmp / "noise80.pth").write_bytes(b"\x80\x02" + noise)
    cases["random-bytes-like-pickle"] = (tmp / "noise80.pth", "corrupt")
    (tmp / "noise.safetensors").write_bytes(noise)
    cases["random-safetensors"] = (tmp / "noise.safetensors", "safetensors")
    (tmp / "folder.pt").mkdir()
    cases["directory"] = (tmp / "folder.pt", "folder")
    cases["missing"] = (tmp / "missing.pt", "not found")
    (tmp / "weights.txt").write_bytes(b"hello")
    cases["unsupported-suffix"] = (tmp / "weights.txt", "unsupported")
    # Neither FMEN nor any architecture spandrel knows: the error names what it saw.
    save(
        "linear.pt",
        torch.nn.Linear(4, 4).state_dict(),
        "unsupported model: no known architecture matches its 2 tensors (weight, bias)",
    )
    esrgan = {"conv_first.weight": torch.zeros(64, 3, 3, 3), "conv_last.weight": torch.zeros(3, 64, 3, 3)}
    save(
        "esrgan.pth",
        esrgan,
        "unsupported model: no known architecture matches its 2 tensors (conv_first.weight",
    )
    save("list.pt", [torch.zeros(1)], "not a state dict")
    save("empty-dict.pt", {}, "no tensors")
    save("mixed.pt", {**state, "note": "hi"}, "not a tensor")
    save("missing-tensor.pt", {k: v for k, v in state.items() if k != "lr_conv.weight"}, "do not fit")
    wrong = dict(state)
    wrong["ERBs.0.conv1.weight"] = torch.zeros(50, 50, 1, 1)
    save("wrong-shape.pt", wrong, "do not fit")
    nan = dict(state)
    nan["tail.0.weight"] = torch.full_like(state["tail.0.weight"], float("nan"))
    save("nan.pt", nan, "NaN")
    return cases


BAD_CASES = [
    "empty",
    "truncated",
    "random-bytes",
    "random-bytes-like-pickle",
    "random-safetensors",
    "directory",
    "missing",
    "unsupported-suffix",
    "linear.pt",
    "esrgan.pth",
    "list.pt",
    "empty-dict.pt",
    "mixed.pt",
    "missing-tensor.pt",
    "wrong-shape.pt",
    "nan.pt",
]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, official_state: dict) -> dict:
    return _bad_files(tmp_path_factory.mktemp("bad"), official_state)


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_files_raise_one_line_weights_error(case: str, bad_files: dict) -> None:
    path, fragment = bad_files[case]
    with pytest.raises(WeightsError) as info:
        load_weights(path)
    assert fragment in str(info.value)
    assert_one_line(info.value)


def test_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.pt"
    path.write_bytes(b"\0" * 4096)
    with pytest.raises(WeightsError, match="too large"):
        read_state_dict(path, max_bytes=1024)


# --------------------------------------------------------------------------- registry


def write_manifest(folder: Path, entries: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"version": 1, "weights": entries}))


def dummy(folder: Path, name: str, model: str, scale: int, **extra: object) -> dict:
    """A manifest record whose file exists (listing trusts manifests, so content is irrelevant)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(name.encode())
    return {"file": name, "model": model, "scale": scale, "sha256": "0" * 64, **extra}


def test_repository_manifest_is_valid() -> None:
    data = json.loads((REPO / "weights" / "manifest.json").read_text())
    assert data["version"] == 1 and isinstance(data["weights"], list)


def test_folders_honour_overrides_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert registry.user_weights_dir() == tmp_path / "data" / "weights"
    assert registry.project_weights_dir() == tmp_path / "bundled"
    monkeypatch.delenv(registry.ENV_WEIGHTS_DIR)
    assert registry.project_weights_dir() == REPO / "weights"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    assert registry.project_weights_dir() == tmp_path / "bundle" / "weights"
    monkeypatch.delenv(registry.ENV_DATA_DIR)
    assert "fmen-upscaler" in str(registry.user_data_dir())


def test_no_weights_gives_helpful_missing_error() -> None:
    write_manifest(registry.project_weights_dir(), [])
    assert registry.installed_weights() == []
    with pytest.raises(MissingWeightsError) as info:
        registry.find_weights("fmen-s", 4)
    text = str(info.value)
    assert "FMEN-S ×4" in text and "--weights FILE" in text and "fmen-upscale --fetch-official" in text
    assert_one_line(info.value)
    with pytest.raises(MissingWeightsError) as info:
        registry.find_weights("fmen", 3)
    assert "FMEN ×3" in str(info.value) and "fetch-official" not in str(info.value)


def test_import_copies_validates_and_registers() -> None:
    entry = registry.import_weights(require(NJUJET))
    folder = registry.user_weights_dir()
    assert entry.path == folder / f"fmen-s_x4_{NJUJET_SHA256[:8]}.pt"
    assert sha256_file(entry.path) == NJUJET_SHA256 == entry.sha256
    assert (entry.model, entry.scale, entry.source, entry.params) == ("fmen-s", 4, "imported", FMEN_S_PARAMS)
    assert entry.label == "FMEN-S ×4 (imported)"
    records = registry.read_manifest(folder)
    assert records[0]["original_name"] == NJUJET.name and records[0]["source"] == "imported"
    assert registry.find_weights("FMEN-S", 4) == entry
    assert registry.import_weights(NJUJET) == entry  # idempotent
    assert len(registry.read_manifest(folder)) == 1
    assert sorted(p.name for p in folder.iterdir()) == sorted(["manifest.json", entry.path.name])


def test_import_of_invalid_file_stores_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "not_fmen.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), bad)
    with pytest.raises(WeightsError):
        registry.import_weights(bad)
    folder = registry.user_weights_dir()
    assert not folder.exists() or list(folder.iterdir()) == []


def test_available_prefers_official_then_imported_then_bundled() -> None:
    bundled, user = registry.project_weights_dir(), registry.user_weights_dir()
    write_manifest(
        bundled,
        [
            dummy(bundled, "b_x4.safetensors", "fmen-s", 4, params=1, psnr={"Set5": 32.1}),
            dummy(bundled, "b_x2.safetensors", "fmen-s", 2),
            {"file": "gone.safetensors", "model": "fmen", "scale": 2, "sha256": ""},
            {"file": "../escape.pt", "model": "fmen", "scale": 3, "sha256": ""},
            {"model": "fmen", "scale": 4},
        ],
    )
    (bundled.parent / "escape.pt").write_bytes(b"x")
    official = dummy(user, "fmen_s_x4_official.pt", "fmen-s", 4, source="official")
    imported = dummy(user, "fmen-s_x4_aaaaaaaa.pt", "fmen-s", 4, source="imported")
    write_manifest(user, [official, imported])

    found = registry.available()
    assert set(found) == {("fmen-s", 4), ("fmen-s", 2)}
    assert found["fmen-s", 4].source == "official"
    assert found["fmen-s", 4].label == "FMEN-S ×4 (official)"
    assert found["fmen-s", 2].source == "bundled"
    assert len(registry.installed_weights()) == 4

    write_manifest(user, [imported])
    assert registry.find_weights("fmen-s", 4).path.name == imported["file"]
    write_manifest(user, [])
    entry = registry.find_weights("fmen-s", 4)
    assert (entry.source, entry.params, dict(entry.psnr)) == ("bundled", 1, {"Set5": 32.1})


def test_photo_weights_are_never_the_default_and_unknown_kinds_are_ignored() -> None:
    bundled = registry.project_weights_dir()
    clean = dummy(bundled, "fmen_s_x4.safetensors", "fmen-s", 4)
    photo = {**dummy(bundled, "fmen_s_x4_photo.safetensors", "fmen-s", 4), "kind": "photo"}
    odd = {**dummy(bundled, "fmen_s_x2_odd.safetensors", "fmen-s", 2), "kind": "anime"}
    write_manifest(bundled, [clean, photo, odd])  # the photo entry last: it still is no default

    assert registry.find_weights("fmen-s", 4).path.name == "fmen_s_x4.safetensors"
    found = registry.find_weights("fmen-s", 4, "photo")
    assert (found.path.name, found.kind, found.label) == (
        "fmen_s_x4_photo.safetensors",
        "photo",
        "FMEN-S ×4 photo (bundled)",
    )
    assert set(registry.available("photo")) == {("fmen-s", 4)}
    assert ("fmen-s", 2) not in registry.available()  # the unknown kind is skipped
    with pytest.raises(registry.MissingWeightsError) as info:
        registry.find_weights("fmen", 4, "photo")
    assert_one_line(info.value)
    assert "photo" in str(info.value)


def test_corrupt_manifest_is_reported_not_ignored() -> None:
    folder = registry.user_weights_dir()
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(WeightsError, match="corrupt") as info:
        registry.installed_weights()
    assert_one_line(info.value)


@pytest.mark.parametrize("module", ["registry", "fetch", "files"])
def test_torch_free_modules_do_not_import_torch(module: str) -> None:
    code = f"import sys, fmen_gui.weights.{module}; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


def test_entries_are_hashable() -> None:
    entry = registry.WeightsEntry(Path("a.pt"), "fmen", 2, "bundled", "0" * 64, None, {"Set5": 37.0})
    assert {entry: 1}[entry] == 1
    assert entry.label == "FMEN ×2 (bundled)"


# --------------------------------------------------------------------------- files that claim too much
# A few kilobytes can describe a network of terabytes, or a zip member of gigabytes. Everything a
# file claims is bounded before anything is allocated from it, in a separate process whose peak
# memory is measured: a check that came after the allocation would show up there.

SHIPPED = REPO / "weights" / "fmen_s_x4.safetensors"


def _patch_zip_size(path: Path, member: str, claimed: int) -> None:
    """Make ``member``'s local and central headers claim ``claimed`` uncompressed bytes."""
    blob = bytearray(path.read_bytes())
    name = member.encode()
    # (signature, offset of the uncompressed size, of the name length, of the name)
    for signature, size_at, length_at, name_at in ((b"PK\x01\x02", 24, 28, 46), (b"PK\x03\x04", 22, 26, 30)):
        start = 0
        while (at := blob.find(signature, start)) >= 0:
            named = int.from_bytes(blob[at + length_at : at + length_at + 2], "little") == len(name)
            if named and blob[at + name_at : at + name_at + len(name)] == name:
                blob[at + size_at : at + size_at + 4] = claimed.to_bytes(4, "little")
            start = at + 4
    path.write_bytes(bytes(blob))


def _hostile_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the exact start of its one-line error)."""
    from safetensors.torch import save_file

    state = read_state_dict(SHIPPED)
    cases: dict[str, tuple[Path, str]] = {}

    claims = folder / "claims-3gb.pt"
    torch.save(state, claims)
    with zipfile.ZipFile(claims) as archive:
        data = max(archive.infolist(), key=lambda m: m.file_size).filename
    _patch_zip_size(claims, data, 3 * 2**30)
    cases["claims-3gb.pt"] = (claims, "refused: the archive unpacks to 3.0 GB (the limit is 2.0 GB)")

    bomb = folder / "bomb.pt"
    torch.save(state, folder / "plain.pt")
    with zipfile.ZipFile(folder / "plain.pt") as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        data = max(src.infolist(), key=lambda m: m.file_size).filename
        for member in src.infolist():
            body = src.read(member)
            if member.filename == data:
                body = bytes(64 * 2**20)  # 64 MB of zeros deflate to about 64 KB
            dst.writestr(member.filename, body)
    cases["bomb.pt"] = (bomb, f"refused: '{data}' is compressed more than 1000:1")

    wide = dict(state)
    wide["head.weight"] = torch.zeros(10**6, 3, 3, 0)  # no bytes, but "a million channels"
    save_file(wide, str(folder / "wide.safetensors"))
    cases["wide.safetensors"] = (
        folder / "wide.safetensors",
        "not a usable FMEN-family checkpoint: channels = 1000000 (allowed: 1-256)",
    )

    many = {f"ERBs.{i}.conv1.weight": torch.zeros(0) for i in range(20_000)}
    save_file({**state, **many}, str(folder / "many.safetensors"))
    cases["many.safetensors"] = (folder / "many.safetensors", "not an FMEN-family checkpoint: 20")

    deep = {k: v for k, v in state.items() if not k.startswith(("ERBs.", "HFABs."))}
    deep.update({f"ERBs.{i}.conv1.weight": torch.zeros(0) for i in range(40)})
    save_file(deep, str(folder / "deep.safetensors"))
    cases["deep.safetensors"] = (
        folder / "deep.safetensors",
        "not a usable FMEN-family checkpoint: blocks = 40 (allowed: 0-32)",
    )

    liar = dict(state)
    liar["head.weight"] = torch.zeros(256, 3, 3, 3)  # 256 channels in the head, 50 everywhere else
    save_file(liar, str(folder / "liar.safetensors"))
    cases["liar.safetensors"] = (
        folder / "liar.safetensors",
        "FMEN-family keys but the tensors do not fit: ",
    )

    # The largest network the bounds allow, every tensor a zero-stride view of one number: the
    # file is tiny, the network its shapes describe is not.
    from fmen_gui.arch.fmen import FMENConfig

    big = FMENConfig(256, 256, 32, (16,) * 33, 4)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in FMEN(big, deploy=True).state_dict().items()}
    one = torch.zeros(1)
    torch.save({k: one.expand(shape) for k, shape in shapes.items()}, folder / "views.pt")
    cases["views.pt"] = (folder / "views.pt", "refused: the tensors claim ")
    return cases


_MEASURE = """
import json, resource, sys
from pathlib import Path
from fmen_gui.errors import WeightsError
from fmen_gui.weights.loading import load_weights

load_weights(Path(sys.argv[1]))  # warm up: imports, allocator, one real network
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
results = {}
for path in sys.argv[2:]:
    try:
        load_weights(Path(path))
        results[path] = "loaded"
    except WeightsError as exc:
        results[path] = str(exc)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"results": results, "grown_kib": grown}))
"""


def test_files_that_claim_too_much_are_refused_before_allocating(tmp_path: Path) -> None:
    cases = _hostile_files(tmp_path)
    assert all(path.stat().st_size < 4 * 2**20 for path, _ in cases.values())
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(SHIPPED), *(str(p) for p, _ in cases.values())],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for name, (path, start) in cases.items():
        message = report["results"][str(path)]
        assert message.startswith(start), (name, message)
        assert "\n" not in message
    # Reading the files themselves (the 20,000-key header, the 64 KB pickle) takes a little;
    # any of the networks or members they describe would take hundreds of MB to terabytes.
    assert report["grown_kib"] < 64 * 1024, report


def test_a_deflated_checkpoint_still_loads(tmp_path: Path) -> None:
    """Re-zipping a checkpoint with compression (as archivers do) is not a bomb."""
    state = read_state_dict(SHIPPED)
    torch.save(state, tmp_path / "plain.pt")
    packed = tmp_path / "packed.pt"
    with (
        zipfile.ZipFile(tmp_path / "plain.pt") as src,
        zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for member in src.infolist():
            dst.writestr(member.filename, src.read(member))
    assert packed.stat().st_size < (tmp_path / "plain.pt").stat().st_size
    model, descriptor = load_weights(packed)
    assert descriptor.key == "fmen-s" and descriptor.scale == 4
    assert torch.equal(model.state_dict()["tail.0.weight"], state["tail.0.weight"])


def _folder_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record (device, inode) of every folder os.fsync is called on; the real fsync still runs."""
    real = os.fsync
    folders: list[tuple[int, int]] = []

    def spy(fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            folders.append((info.st_dev, info.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return folders


def _write_image(path: Path, state: dict) -> None:
    write_image(path, ImageData(rgb=np.zeros((4, 4, 3), np.uint8), alpha=None), overwrite=True)


def _write_manifest(path: Path, state: dict) -> None:
    atomic_write_bytes(path, b"[]\n")


def _copy_weights(path: Path, state: dict) -> None:
    source = path.with_name("source.bin")
    source.write_bytes(b"weights")
    copy_atomically(source, path)


def _export_weights(path: Path, state: dict) -> None:
    save_safetensors(state, path)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and folder fsync")
@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("out.png", _write_image),
        ("manifest.json", _write_manifest),
        ("imported.safetensors", _copy_weights),
        ("exported.safetensors", _export_weights),
    ],
    ids=["image", "manifest", "import", "export"],
)
def test_weights_are_written_like_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, official_state: dict, name: str, write: Callable
) -> None:
    """One writer for all: a plain save's permissions, an existing file's kept, the folder fsynced."""
    target = tmp_path / name
    folder = (tmp_path.stat().st_dev, tmp_path.stat().st_ino)
    old_umask = os.umask(0o027)
    try:
        synced = _folder_fsyncs(monkeypatch)
        write(target, official_state)
        assert stat.S_IMODE(target.stat().st_mode) == 0o640  # 0666 less the umask, not mkstemp's 0600
        assert synced == [folder]
        target.chmod(0o604)  # the user's choice survives a rewrite
        write(target, official_state)
        assert stat.S_IMODE(target.stat().st_mode) == 0o604
        assert synced == [folder, folder]
    finally:
        os.umask(old_umask)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "source.bin") == [name]
