"""Models of other architectures: import, list, remove and run them, without any download.

The models are tiny seeded random-weight networks built with spandrel's own classes
(:mod:`tests.spandrel_models`), saved as ``.pth`` and ``.safetensors``. Refusals are checked
on files that are hostile (a pickle that would run code), of the wrong purpose (LaMa, an
inpainting model), broken (NaN weights), unknown (no architecture matches) or too large.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fmen_gui.cli import _resolve_model, build_parser, run
from fmen_gui.engine.pipeline import Engine, EngineSettings
from fmen_gui.errors import MissingWeightsError, WeightsError
from fmen_gui.weights import registry
from fmen_gui.weights.models import import_spandrel
from tests import spandrel_models

# Five architectures of the issue (SPAN, RRDBNet/ESRGAN, Compact, SAFMN or OmniSR, SwinIR)
# plus the other builders; each saved both ways.
MODELS = [name for name in spandrel_models.BUILDERS if name != "dncnn_gray_x1"]
SUFFIXES = (".pth", ".safetensors")


def _cli(*args: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run([str(a) for a in args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _user_files() -> list[str]:
    folder = registry.user_weights_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _nothing_imported() -> bool:
    """No model file in the user folder and no manifest record (sweeps of temp files aside)."""
    return [n for n in _user_files() if n != registry.MANIFEST_NAME] == [] and not registry.read_manifest(
        registry.user_weights_dir()
    )


def _expected_params(name: str) -> int:
    return sum(p.numel() for p in spandrel_models.build(name).parameters())


@pytest.fixture
def image(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    path = tmp_path / "in" / "photo.png"
    path.parent.mkdir()
    Image.fromarray(rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)).save(path)
    return path


# --------------------------------------------------------------------------- import


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("name", MODELS)
def test_import_gives_architecture_scale_params_and_key(name: str, suffix: str, tmp_path: Path) -> None:
    _builder, arch, scale = spandrel_models.BUILDERS[name]
    path = spandrel_models.save(name, tmp_path, suffix)
    before = path.read_bytes()

    entry = registry.import_weights(path)

    assert (entry.arch, entry.scale, entry.params) == (arch, scale, _expected_params(name))
    assert (entry.model, entry.name, entry.display_name, entry.source) == (name, name, name, "imported")
    assert not entry.is_fmen and entry.purpose == "SR"
    assert entry.label.startswith(f"{name} ×{scale} ({arch}, ") and entry.label.endswith(" params, imported)")
    assert entry.path.parent == registry.user_weights_dir() and entry.path.suffix == suffix
    assert entry.path.read_bytes() == before == path.read_bytes()  # a copy; the original untouched
    record = registry.read_manifest(registry.user_weights_dir())[0]
    assert (record["arch"], record["name"], record["purpose"], record["original_name"]) == (
        arch,
        name,
        "SR",
        path.name,
    )
    assert registry.find_weights(name, scale) == entry
    assert registry.imported_models() == [entry]
    assert registry.import_weights(path) == entry  # the same file twice: the entry already there
    assert len(registry.read_manifest(registry.user_weights_dir())) == 1


def test_one_channel_restoration_model_is_imported_as_1x(tmp_path: Path) -> None:
    entry = registry.import_weights(spandrel_models.save("dncnn_gray_x1", tmp_path))
    assert (entry.arch, entry.scale, entry.purpose) == ("DnCNN", 1, "Restoration")
    assert entry.label.startswith("dncnn_gray_x1 ×1 (DnCNN, ")


def test_keys_are_unique_slugs_never_a_preset(tmp_path: Path) -> None:
    first = registry.import_weights(spandrel_models.save("span_x4", tmp_path, ".pth"))
    # Another file of the same stem (other weights): same slug, so a hash suffix.
    other = tmp_path / "other"
    other.mkdir()
    second = registry.import_weights(spandrel_models.save("span_x4", other, ".pth", seed=1))
    assert first.model == "span_x4" and second.model == f"span_x4-{second.sha256[:6]}"
    # A stem that slugs to a preset's key never takes it (it would replace the FMEN default).
    renamed = tmp_path / " FMEN-S .safetensors"
    spandrel_models.save("compact_x2", tmp_path).rename(renamed)
    third = registry.import_weights(renamed)
    assert third.model == f"fmen-s-{third.sha256[:6]}" and third.display_name == " FMEN-S "
    assert registry.find_weights("fmen-s", 2).arch == "FMEN"  # the preset is untouched
    assert registry.model_slug("4x UltraSharp (v2)!") == "4x-ultrasharp-v2"
    assert registry.model_slug("--é--") == "model"
    assert {e.model for e in registry.imported_models()} == {first.model, second.model, third.model}


def test_a_non_fmen_record_under_a_preset_key_is_ignored(tmp_path: Path) -> None:
    """A tampered manifest cannot make another architecture the FMEN-S default."""
    entry = registry.import_weights(spandrel_models.save("span_x4", tmp_path))
    folder = registry.user_weights_dir()
    records = registry.read_manifest(folder)
    records[0]["model"] = "fmen-s"
    registry.write_manifest(folder, records)
    assert registry.find_weights("fmen-s", 4).source == "bundled"
    assert entry.path not in [e.path for e in registry.installed_weights()]


# --------------------------------------------------------------------------- remove


def test_remove_deletes_file_and_record_and_refuses_bundled(tmp_path: Path) -> None:
    keep = registry.import_weights(spandrel_models.save("esrgan_x4", tmp_path, ".pth"))
    gone = registry.import_weights(spandrel_models.save("omnisr_x3", tmp_path))
    registry.remove_weights(gone)
    assert not gone.path.exists() and keep.path.exists()
    assert [r["file"] for r in registry.read_manifest(registry.user_weights_dir())] == [keep.path.name]
    assert registry.imported_models() == [keep]
    with pytest.raises(MissingWeightsError, match="import a model file"):
        registry.find_weights(gone.model, gone.scale)
    with pytest.raises(WeightsError, match="already removed"):
        registry.remove_weights(gone)
    bundled = registry.find_weights("fmen-s", 4)
    assert bundled.source == "bundled"
    with pytest.raises(WeightsError, match="ships with the app"):
        registry.remove_weights(bundled)
    assert bundled.path.is_file()


# --------------------------------------------------------------------------- refusals


def test_hostile_pickle_runs_nothing_and_copies_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[object, ...]]:
            return (os.system, (f"touch {marker}",))

    state = {k: v for k, v in spandrel_models.build("compact_x2").state_dict().items()}
    archive = tmp_path / "evil.pth"
    torch.save({**state, "payload": Evil()}, archive)
    legacy = tmp_path / "evil-legacy.pth"
    legacy.write_bytes(pickle.dumps({"payload": Evil()}, protocol=2))
    for path in (archive, legacy):
        with pytest.raises(WeightsError) as info:
            registry.import_weights(path)
        assert "unsafe pickle" in str(info.value) and "\n" not in str(info.value)
        code, out, err = _cli("--import-model", path)
        assert (code, out) == (1, "") and err == f"error: {path}: {info.value}\n"
    assert not marker.exists()
    assert _nothing_imported()


@pytest.fixture(scope="module")
def lama_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """spandrel's LaMa (inpainting), half precision to keep the file at about 100 MB."""
    import safetensors.torch

    import_spandrel()
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(0)
    state = {k: v.half().contiguous() for k, v in LaMa().state_dict().items()}
    path = tmp_path_factory.mktemp("lama") / "big-lama.safetensors"
    safetensors.torch.save_file(state, str(path))
    return path


def test_wrong_purpose_model_is_refused(lama_file: Path) -> None:
    with pytest.raises(WeightsError) as info:
        registry.import_weights(lama_file)
    assert str(info.value) == (
        "refused: LaMa is an inpainting model (it needs a mask); this app upscales whole images"
    )
    code, _out, err = _cli("--import-model", lama_file)
    assert code == 1 and err == f"error: {lama_file}: {info.value}\n"
    assert _nothing_imported()


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    import safetensors.torch

    state = {k: v.clone() for k, v in spandrel_models.build("span_x4").state_dict().items()}
    name = next(k for k, v in state.items() if v.is_floating_point() and v.dim() == 4)
    state[name][0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.safetensors"
    safetensors.torch.save_file(state, str(path))
    with pytest.raises(WeightsError, match=r"the weights contain NaN or infinite values \("):
        registry.import_weights(path)
    assert _nothing_imported()


def test_unsupported_architecture_names_what_it_saw(tmp_path: Path) -> None:
    path = tmp_path / "linear.pth"
    torch.save(torch.nn.Linear(4, 4).state_dict(), path)
    message = "unsupported model: no known architecture matches its 2 tensors (weight, bias)"
    with pytest.raises(WeightsError) as info:
        registry.import_weights(path)
    assert str(info.value) == message
    code, _out, err = _cli("--import-model", path)
    assert code == 1 and err == f"error: {path}: {message}\n"
    assert _nothing_imported()


def test_file_over_the_size_cap_is_refused_before_reading(tmp_path: Path) -> None:
    huge = tmp_path / "huge.safetensors"
    with open(huge, "wb") as fh:
        fh.truncate(3 * 2**30)  # sparse: 3 GB on paper, nothing on disk (reading it would take long)
    with pytest.raises(WeightsError, match=r"^file too large \(3\.0 GB; the limit is 2\.0 GB\)"):
        registry.import_weights(huge)
    assert _nothing_imported()


# --------------------------------------------------------------------------- the command line


def test_cli_import_list_and_remove(tmp_path: Path) -> None:
    paths = [spandrel_models.save("span_x4", tmp_path, ".pth"), spandrel_models.save("swinir_x2", tmp_path)]
    for path in paths:
        code, out, err = _cli("--import-model", path)
        assert code == 0 and err == "", err
        key = path.stem
        entry = registry.find_weights(key, spandrel_models.BUILDERS[key][2])
        assert out == f"imported {entry.label}: run it with --model {key}  ({entry.path})\n"

    code, out, _err = _cli("--list-models")
    assert code == 0
    lines = out.splitlines()
    for key in ("span_x4", "swinir_x2"):
        entry = registry.find_weights(key, spandrel_models.BUILDERS[key][2])
        (line,) = [ln for ln in lines if ln.split()[0] == key]
        assert line.split()[1:5] == [f"×{entry.scale}", "clean", "imported", entry.arch]
        assert f"{registry.params_text(entry.params or 0)}  {entry.path}  {key}" in line
    assert any(ln.split()[:2] == ["fmen-s", "×4"] and "bundled" in ln for ln in lines)
    assert f"User data folder:       {registry.user_data_dir()}" in lines

    span = registry.find_weights("span_x4", 4)
    code, out, err = _cli("--remove-model", "SPAN_X4")
    assert code == 0 and err == "" and out == f"removed {span.label}  ({span.path})\n"
    assert not span.path.exists()
    assert [e.model for e in registry.imported_models()] == ["swinir_x2"]

    code, out, err = _cli("--remove-model", "span_x4")
    assert (code, out) == (1, "")
    assert (
        err
        == "error: --remove-model span_x4: no such model is installed (imported: swinir_x2; see --list-models)\n"
    )
    code, out, err = _cli("--remove-model", "fmen", "--scale", "2")
    assert (code, out) == (1, "")
    assert err == "error: --remove-model fmen: FMEN ×2 (bundled) ships with the app and cannot be removed\n"
    assert registry.find_weights("fmen", 2).path.is_file()


def test_cli_usage_errors_are_one_line(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.import_weights(spandrel_models.save("omnisr_x3", tmp_path))
    for args, message in (
        (
            ("--model", "nope"),
            "--model nope: no such model; use fmen-s, fmen or an imported one "
            "(imported: omnisr_x3; see --list-models)",
        ),
        (
            ("-m", "omnisr_x3", "--scale", "4"),
            "--scale 4 conflicts with --model omnisr_x3, which is a ×3 model",
        ),
    ):
        with pytest.raises(SystemExit) as info:
            _cli(image, "-o", tmp_path / "out", *args)
        assert info.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1] == f"fmen-upscale: error: {message}"
    assert not (tmp_path / "out").exists()
    # Keys are case-insensitive and the scale is the model's own.
    parsed = build_parser().parse_args([str(image), "-m", "OmniSR_x3"])
    assert _resolve_model(parsed) == ("omnisr_x3", 3)


# --------------------------------------------------------------------------- running them


@pytest.mark.parametrize(("name", "suffix"), [(n, s) for n in MODELS for s in SUFFIXES])
def test_cli_weights_file_gives_the_right_size(name: str, suffix: str, image: Path, tmp_path: Path) -> None:
    scale = spandrel_models.BUILDERS[name][2]
    path = spandrel_models.save(name, tmp_path, suffix)
    out = tmp_path / "out.png"
    code, _stdout, err = _cli("--weights", path, image, "-o", out)
    assert code == 0, err
    with Image.open(out) as result:
        assert result.size == (17 * scale, 13 * scale)
    assert _nothing_imported()  # --weights runs a file where it is; nothing is installed


def test_engine_runs_weights_file_and_imported_key(image: Path, tmp_path: Path) -> None:
    path = spandrel_models.save("compact_x2", tmp_path, ".pth")
    engine = Engine(EngineSettings(weights=path))
    assert engine.scale == 2
    entry = registry.import_weights(path)
    by_key = Engine(EngineSettings(model=entry.model, scale=entry.scale))
    assert by_key.weights_path == entry.path and by_key.scale == 2

    code, _out, err = _cli(image, "-m", entry.model, "-o", tmp_path / "by-key.png")
    assert code == 0, err
    with Image.open(tmp_path / "by-key.png") as result:
        assert result.size == (34, 26)


def test_cli_fmen_import_replaces_the_preset_until_removed(tmp_path: Path) -> None:
    """An imported FMEN-S file takes the preset's key; removing it brings the bundled one back."""
    bundled = registry.find_weights("fmen-s", 2)
    copy = tmp_path / "my fmen-s.safetensors"
    copy.write_bytes(bundled.path.read_bytes())
    code, out, err = _cli("--import-model", copy)
    entry = registry.find_weights("fmen-s", 2)
    assert code == 0 and err == "" and entry.source == "imported" and entry.is_fmen
    assert out == f"imported FMEN-S ×2 (imported): run it with --model fmen-s --scale 2  ({entry.path})\n"
    assert registry.imported_models() == []  # a preset's weights, not another model for the menus
    code, out, err = _cli("--remove-model", "fmen-s", "--scale", "2")
    assert code == 0 and out == f"removed FMEN-S ×2 (imported)  ({entry.path})\n"
    assert registry.find_weights("fmen-s", 2) == bundled and not entry.path.exists()
