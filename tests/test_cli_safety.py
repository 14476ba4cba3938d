"""The command line's contracts under races, signals, odd consoles and bad arguments.

Real ``fmen-upscale`` processes where the contract is about a process (signals, two runs at
once, the console's encoding, a closed pipe), in-process runs elsewhere. A child process is
held at an exact point (inside the import of torch, with the image complete in its temporary
file, just before the final step) by a small hook that prints a marker line and waits; the
test acts only after reading the marker, so nothing depends on timing.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmen_gui import cli
from fmen_gui.engine import images
from tests.conftest import ROOT, dead_and_live_temps
from tests.test_reliability_cli import _cli, leftovers, save_noise, snapshot

SUFFIX = "_fmen-s_x4"
CHILD_TIMEOUT_S = 300  # a safety net for a hung child, not a speed limit


# --------------------------------------------------------------------------------------------
# Child processes


# Blocks when the image is complete in its temporary file, before the final step.
HOLD_WHILE_WRITING = """
    import time
    from fmen_gui.engine import images
    real_encode = images._encode
    def encode(fh, *args):
        real_encode(fh, *args)
        fh.flush()
        print("WRITING", flush=True)
        time.sleep(600)
    images._encode = encode
"""

# Blocks while Python imports torch, i.e. during start-up.
HOLD_IN_TORCH_IMPORT = """
    import time
    class Stall:
        def find_spec(self, name, path=None, target=None):
            if name == "torch":
                print("IMPORTING TORCH", flush=True)
                time.sleep(600)
            return None
    sys.meta_path.insert(0, Stall())
"""

# Waits for a line on stdin just before the final step (the image is complete in its temp file).
HOLD_BEFORE_PUBLISH = """
    from fmen_gui import atomicfiles
    real_publish = atomicfiles.publish
    def publish(temp, final, *, overwrite):
        print("READY", flush=True)
        sys.stdin.readline()
        return real_publish(temp, final, overwrite=overwrite)
    atomicfiles.publish = publish
"""


def start_cli(
    *args: object, hook: str = "", env: dict[str, str] | None = None, **popen: object
) -> subprocess.Popen[str]:
    """``fmen-upscale ARGS`` as a real process (its ``main``), after ``hook`` has run in it."""
    code = "import sys\n" + textwrap.dedent(hook) + "\nfrom fmen_gui.cli import main\nsys.exit(main())\n"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    options: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    options.update(popen)
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", code, *map(str, args)], env=environment, **options
    )


def wait_for(child: subprocess.Popen[str], marker: str) -> None:
    assert child.stdout is not None
    line = child.stdout.readline()
    if line != marker + "\n":
        child.kill()
        _out, err = child.communicate()
        pytest.fail(f"expected {marker!r} from the child, got {line!r}; stderr:\n{err}")


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    return [save_noise(folder / "a.png", 7, 5), save_noise(folder / "b.png", 6, 4)]


# --------------------------------------------------------------------------------------------
# Signals


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)]
)
def test_a_signal_mid_write_leaves_no_temp_file(
    njujet: Path, inputs: list[Path], tmp_path: Path, signum: int, code: int
) -> None:
    out = tmp_path / "out"
    child = start_cli(*inputs, "-o", out, "--weights", njujet, hook=HOLD_WHILE_WRITING)
    wait_for(child, "WRITING")
    assert [p.name.endswith(".part") for p in out.iterdir()] == [True]  # really mid-write
    child.send_signal(signum)
    stdout, stderr = child.communicate(timeout=CHILD_TIMEOUT_S)
    assert child.returncode == code, stderr
    name = signal.Signals(signum).name
    expected = (
        "interrupted: the current output was not written\n"
        if signum == signal.SIGINT
        else f"terminated by {name}: the current output was not written\n"
    )
    assert stderr == expected and stdout == ""
    assert not out.exists()  # the folder this run created, empty again, is gone too
    assert leftovers(inputs[0].parent) == []


@pytest.mark.parametrize(
    ("signum", "code", "message"),
    [(signal.SIGINT, 130, "interrupted\n"), (signal.SIGTERM, 143, "terminated by SIGTERM\n")],
)
def test_a_signal_during_start_up_gives_one_line(
    njujet: Path, inputs: list[Path], tmp_path: Path, signum: int, code: int, message: str
) -> None:
    """Ctrl-C while torch was being imported once printed a traceback."""
    out = tmp_path / "out"
    child = start_cli(inputs[0], "-o", out, "--weights", njujet, hook=HOLD_IN_TORCH_IMPORT)
    wait_for(child, "IMPORTING TORCH")
    child.send_signal(signum)
    stdout, stderr = child.communicate(timeout=CHILD_TIMEOUT_S)
    assert (child.returncode, stdout, stderr) == (code, "", message)
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# Never replace without the word: the final step refuses, whatever an earlier check said


def test_two_runs_writing_one_output_one_wins_and_the_other_says_so(njujet: Path, tmp_path: Path) -> None:
    """Both runs pass the "does the output exist" check before either has written."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = save_noise(tmp_path / "one" / "a.png", 7, 5)
    second = save_noise(tmp_path / "two" / "a.png", 9, 6)  # same name, other picture
    out = tmp_path / "out"
    dst = out / f"a{SUFFIX}.png"
    runs = [
        start_cli(src, "-o", out, "--weights", njujet, hook=HOLD_BEFORE_PUBLISH, stdin=subprocess.PIPE)
        for src in (first, second)
    ]
    for child in runs:
        wait_for(child, "READY")  # both have the finished image in a temp file; dst is free
    assert not dst.exists()
    results = []
    for child in runs:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        stdout, stderr = child.communicate(timeout=CHILD_TIMEOUT_S)
        results.append((child.returncode, stdout, stderr))
    assert results[0][0] == 0 and results[0][2] == "", results[0]
    assert results[0][1].startswith(f"{first} -> {dst}  ")
    assert results[1] == (
        1,
        "",
        f"error: {second}: output already exists: {dst} (it appeared while this job ran and was "
        "kept; use --overwrite to replace it)\n",
    )
    with Image.open(dst) as im:
        assert im.size == (20, 28)  # the first run's result, intact
    assert leftovers(out) == [] and sorted(p.name for p in out.iterdir()) == [dst.name]


def test_a_file_created_at_the_output_during_the_job_is_kept(
    njujet: Path, inputs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    dst = out / f"a{SUFFIX}.png"
    real = images._encode

    def encode(fh: io.BufferedWriter, *args: object) -> None:
        real(fh, *args)
        if not dst.exists():
            dst.write_bytes(b"another program's file")  # after the check, before the final step

    monkeypatch.setattr(images, "_encode", encode)
    code, stdout, stderr = _cli(*inputs, "-o", out, "--weights", njujet)
    assert code == 1
    assert stderr == (
        f"error: {inputs[0]}: output already exists: {dst} (it appeared while this job ran and "
        "was kept; use --overwrite to replace it)\n"
    )
    assert dst.read_bytes() == b"another program's file"
    assert f"{inputs[1]} -> {out / f'b{SUFFIX}.png'}" in stdout  # the batch went on
    assert leftovers(out) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_two_inputs_with_one_output_name(njujet: Path, tmp_path: Path, overwrite: bool) -> None:
    """``a.png`` and ``a.jpg`` with ``--format png`` both map to ``a_fmen-s_x4.png``.

    Even with ``--overwrite`` (which is about earlier runs' files) the second must not replace
    the first one's result: it fails with a line that says why.
    """
    folder = tmp_path / "in"
    folder.mkdir()
    png = save_noise(folder / "a.png", 7, 5)
    jpg = save_noise(folder / "a.jpg", 9, 6, quality=95)
    out = tmp_path / "out"
    dst = out / f"a{SUFFIX}.png"
    flags = ["--overwrite"] if overwrite else []
    code, stdout, stderr = _cli(png, jpg, "-o", out, "--format", "png", *flags, "--weights", njujet)
    assert code == 1
    assert stderr == (
        f"error: {jpg}: output {dst} is also the output of {png} in this run "
        "(use --name or separate folders to tell them apart)\n"
    )
    assert stdout.count("\n") == 1
    with Image.open(dst) as im:
        assert im.size == (20, 28)  # a.png's result
    assert leftovers(out) == []


# --------------------------------------------------------------------------------------------
# The console: encodings and closed pipes


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "ascii"])
def test_a_non_utf8_console_does_not_crash(njujet: Path, tmp_path: Path, encoding: str) -> None:
    """Result lines hold ×, → and any name; a latin-1 stdout once crashed after the first image."""
    folder = tmp_path / "ünïcødé"
    folder.mkdir()
    good = [save_noise(folder / "ünïcødé_画像.png"), save_noise(folder / "plain.png")]
    bad = folder / "ßroken_画像.png"
    bad.write_bytes(b"")
    child = start_cli(
        folder,
        "-o",
        tmp_path / "out",
        "--weights",
        njujet,
        env={"PYTHONIOENCODING": encoding},
        encoding=encoding,
    )
    stdout, stderr = child.communicate(timeout=CHILD_TIMEOUT_S)
    assert child.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1 and stderr.startswith("error: ") and stderr.endswith(": empty file\n")
    assert "\\u753b\\u50cf" in stderr  # 画像, escaped rather than fatal
    assert stdout.count("\n") == 2 and "\\u2192" in stdout  # →
    for src in good:
        assert (tmp_path / "out" / f"{src.stem}{SUFFIX}.png").is_file()


def test_a_closed_stdout_pipe_fails_nothing(njujet: Path, inputs: list[Path], tmp_path: Path) -> None:
    """``fmen-upscale … | head -c 1``: the reader is gone before the first result line."""
    out = tmp_path / "out"
    child = start_cli(*inputs, "-o", out, "--weights", njujet)
    assert child.stdout is not None
    child.stdout.close()  # the read end: every write to stdout now fails with EPIPE
    assert child.stderr is not None
    stderr = child.stderr.read()
    child.wait(timeout=CHILD_TIMEOUT_S)
    assert (child.returncode, stderr) == (0, "")
    for src, size in zip(inputs, [(20, 28), (16, 24)], strict=True):
        with Image.open(out / f"{src.stem}{SUFFIX}.png") as im:
            assert im.size == size


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_broken_pipe_in_process_is_not_a_failed_image(
    njujet: Path, inputs: list[Path], tmp_path: Path
) -> None:
    err = io.StringIO()
    code = cli.run(
        [*map(str, inputs), "-o", str(tmp_path / "out"), "--weights", str(njujet)],
        stdout=ClosedPipe(),
        stderr=err,
    )
    assert (code, err.getvalue()) == (0, "")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"a{SUFFIX}.png", f"b{SUFFIX}.png"]


def test_pillow_warnings_stay_off_stderr(njujet: Path, tmp_path: Path) -> None:
    """A JPEG with damaged EXIF made Pillow print "UserWarning: Truncated File Read"."""
    exif = Image.Exif()
    exif[0x010E] = "a description long enough to be stored outside the entry" * 2
    src = tmp_path / "damaged exif.jpg"
    save_noise(src, exif=exif.tobytes()[:-40])
    child = start_cli(src, "-o", tmp_path / "out", "--weights", njujet, env={"PYTHONWARNINGS": "default"})
    stdout, stderr = child.communicate(timeout=CHILD_TIMEOUT_S)
    assert (child.returncode, stderr) == (0, ""), stderr
    assert stdout.count("\n") == 1


# --------------------------------------------------------------------------------------------
# Smaller contracts


def _usage_error(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    with pytest.raises(SystemExit) as info:
        _cli(*args)
    assert info.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


def test_output_file_extension_and_format_must_agree(
    njujet: Path, inputs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-o x.png --format jpg`` once wrote JPEG bytes into ``x.png``."""
    target = tmp_path / "x.png"
    message = _usage_error(capsys, inputs[0], "-o", target, "--format", "jpg", "--weights", njujet)
    assert message == (
        f"fmen-upscale: error: -o {target} is named as PNG but --format jpg was given: "
        "change the extension or drop --format"
    )
    assert not target.exists()
    for name, fmt in (("y.jpeg", "jpg"), ("z.png", "png")):
        code, _stdout, stderr = _cli(inputs[0], "-o", tmp_path / name, "--format", fmt, "--weights", njujet)
        assert code == 0, stderr
        with Image.open(tmp_path / name) as im:
            assert im.format == {"jpg": "JPEG", "png": "PNG"}[fmt]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--device", "tpu"], "--device tpu: unknown device 'tpu'"),
        (["--device", "cpu", "--precision", "fp16"], "--precision fp16: fp16 is not supported on the CPU"),
    ],
)
def test_device_and_precision_errors_are_usage_errors(
    njujet: Path,
    inputs: list[Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    out = tmp_path / "out"
    message = _usage_error(capsys, inputs[0], "-o", out, *args, "--weights", njujet)
    assert message.startswith(f"fmen-upscale: error: {fragment}")
    assert not out.exists()


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{stem.__class__}", "{stem.__class__} is not allowed"),
        ("{stem[0]}", "{stem[0]} is not allowed"),
        ("{stem!r}", "{stem!r} is not allowed"),
        ("{nope}", "{nope} is not allowed"),
        ("{}", "{} is not allowed"),
        ("{stem", "expected '}' before end of string"),
        ("a/{stem}", "it must give a plain file name"),
        ("", "it is empty"),
    ],
)
def test_bad_name_templates_are_usage_errors(
    njujet: Path,
    inputs: list[Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    template: str,
    reason: str,
) -> None:
    out = tmp_path / "out"
    message = _usage_error(capsys, inputs[0], "-o", out, "--name", template, "--weights", njujet)
    assert message.startswith(f"fmen-upscale: error: bad name template {template!r}: {reason}")
    assert not out.exists()


def test_a_good_template_with_a_format_spec(njujet: Path, inputs: list[Path], tmp_path: Path) -> None:
    code, _stdout, stderr = _cli(
        inputs[0], "-o", tmp_path / "out", "--name", "{stem}-{scale:02d}x", "--weights", njujet
    )
    assert code == 0, stderr
    assert (tmp_path / "out" / "a-04x.png").is_file()


def test_no_empty_output_folders_are_left(njujet: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "good").mkdir(parents=True)
    (src / "bad" / "deeper").mkdir(parents=True)
    save_noise(src / "good" / "fine.png")
    (src / "bad" / "deeper" / "empty.png").write_bytes(b"")
    before = snapshot(src)

    out = tmp_path / "out" / "nested"
    code, _stdout, stderr = _cli(src / "bad", "-o", out, "--weights", njujet)  # every input fails
    assert code == 1 and stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nor the parent it had to create

    code, _stdout, _stderr = _cli(src, "-o", out, "--weights", njujet)  # one sub-folder fails
    assert code == 1
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["good", f"good/fine{SUFFIX}.png"]

    existing = tmp_path / "existing"
    existing.mkdir()
    code, _stdout, _stderr = _cli(src / "bad", "-o", existing, "--weights", njujet)
    assert code == 1 and existing.is_dir()  # a folder the user had is never removed
    assert snapshot(src) == before


@pytest.fixture
def stale_temp(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(temp file of a killed run, temp file of a running one) in ``tmp_path / 'out'``."""
    out = tmp_path / "out"
    out.mkdir()
    with dead_and_live_temps(out, f"a{SUFFIX}", f"b{SUFFIX}") as pair:
        yield pair


@pytest.mark.skipif(os.name != "posix", reason="the sweep judges PIDs on POSIX only")
def test_the_cli_sweeps_temp_files_of_killed_runs_where_it_writes(
    njujet: Path, inputs: list[Path], tmp_path: Path, stale_temp: tuple[Path, Path]
) -> None:
    stale, live = stale_temp
    code, _stdout, stderr = _cli(inputs[0], "-o", tmp_path / "out", "--weights", njujet)
    assert code == 0, stderr
    assert not stale.exists() and live.read_bytes() == b"half an image"


def test_results_are_unchanged_by_the_no_replace_step(
    njujet: Path, inputs: list[Path], tmp_path: Path
) -> None:
    """The linked file is the encoded image, with the permissions a normal save gives it."""
    code, _stdout, stderr = _cli(inputs[0], "-o", tmp_path / "out", "--weights", njujet)
    assert code == 0, stderr
    result = tmp_path / "out" / f"a{SUFFIX}.png"
    assert result.stat().st_nlink == 1  # the temp name is gone, not a second link
    with Image.open(result) as im:
        assert im.size == (20, 28) and np.asarray(im).dtype == np.uint8
