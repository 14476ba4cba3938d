"""Reading and writing images: the only place the application touches image files.

This is the public API (:class:`ImageData`, :func:`read_image`, :func:`write_image` and the
helpers around them); the formats themselves live in :mod:`fmen_gui.engine.codecs`. The GUI
thread imports this module at start-up to validate drops and draw previews, so it must stay
light: stdlib, numpy and Pillow only, never torch or Qt (imagecodecs and tifffile, needed only
for 16-bit files, are imported on first use).

Three promises shape the code:

* Every failure a user can cause (a missing, unreadable, corrupt, huge or unsupported file; a
  full disk or read-only folder) surfaces as :class:`~fmen_gui.errors.ImageError` with a one-line
  reason, whichever codec noticed it.
* 16-bit sources stay 16-bit. Pillow decodes 16-bit RGB(A) PNG and TIFF files to 8 bits and
  cannot write them at all, so those go through imagecodecs' libpng
  (:mod:`~fmen_gui.engine.codecs.png16`) and tifffile (:mod:`~fmen_gui.engine.codecs.tiff16`),
  and Pillow does everything else. A 16-bit file that still ends up 8-bit says so in
  :attr:`ImageData.notes`.
* Output files appear whole or not at all (:func:`fmen_gui.atomicfiles.atomic_file`, shared with
  the weights): a crash, a full disk or Ctrl-C mid-write never leaves a half-written image (or a
  stray temporary file) where the user expects a result.
"""

from __future__ import annotations

import errno
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from fmen_gui import atomicfiles
from fmen_gui.engine.codecs import pillow, png16, tiff16
from fmen_gui.engine.codecs.decoded import Decoded, check_pixel_limit, corrupt
from fmen_gui.engine.codecs.metadata import apply_orientation, icc_fits, normalise_exif
from fmen_gui.engine.names import OUTPUT_FORMATS, format_key
from fmen_gui.errors import ImageError, OutputExistsError

__all__ = [
    "DEFAULT_BACKGROUND",
    "DEFAULT_MAX_PIXELS",
    "OUTPUT_FORMATS",
    "SUPPORTED_EXTENSIONS",
    "ImageData",
    "check_output_size",
    "fills_transparency",
    "flatten_alpha",
    "is_supported",
    "make_preview_rgb8",
    "output_format_for",
    "read_image",
    "resize_alpha",
    "to_8bit",
    "write_image",
]

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)
DEFAULT_MAX_PIXELS: int = 200_000_000
# What transparent areas become in a format without alpha (JPEG). White, like paper and like most
# viewers' page background; never the colour that happened to be stored under alpha = 0, which is
# often the hidden remainder of an edit (a face, an address) and would leak on saving.
DEFAULT_BACKGROUND: tuple[int, int, int] = (255, 255, 255)
# Output formats (Pillow names) that store an alpha channel; the others get it composited away.
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
_FLATTEN_ROWS = 256  # rows composited per step, so flattening needs no full-size temporaries

_JPEG_MAX_SIDE = 65_500  # libjpeg's limit
_WEBP_MAX_SIDE = 16_383  # libwebp's limit
_PNG_MAX_SIDE = 2**31 - 1  # the PNG specification's limit
_TIFF_MAX_BYTES = 2**32 - 2**20  # classic TIFF offsets are 32-bit; room left for tags


@dataclass
class ImageData:
    """Decoded pixels plus the metadata worth carrying from the input to the upscaled output.

    Colour is always three channels so the network sees one layout; ``grayscale`` remembers that
    the source had one channel so the output can be written back as grayscale instead of tripling
    its size. ``alpha`` travels beside ``rgb`` because the network never sees it: it is upscaled
    separately with :func:`resize_alpha`.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    grayscale: bool = False
    icc_profile: bytes | None = None
    exif: bytes | None = None
    source_format: str | None = None
    notes: tuple[str, ...] = ()  # one-line remarks for the user, e.g. a 16-bit file read as 8-bit

    def __post_init__(self) -> None:
        # Catch engine bugs here, where the culprit is obvious, rather than deep inside an encoder.
        if not isinstance(self.rgb, np.ndarray) or self.rgb.ndim != 3 or self.rgb.shape[2] != 3:
            raise ValueError("ImageData.rgb must be an H x W x 3 array")
        if self.rgb.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"ImageData.rgb must be uint8 or uint16, not {self.rgb.dtype}")
        self.rgb = np.ascontiguousarray(self.rgb)
        if self.alpha is not None:
            if self.alpha.shape != self.rgb.shape[:2] or self.alpha.dtype != self.rgb.dtype:
                raise ValueError("ImageData.alpha must be H x W with the same dtype as rgb")
            self.alpha = np.ascontiguousarray(self.alpha)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def bit_depth(self) -> int:
        return 16 if self.rgb.dtype == np.uint16 else 8

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), Pillow's order, because that is how sizes are shown to users."""
        return (self.width, self.height)


# --------------------------------------------------------------------------------------------
# Public helpers


def is_supported(path: Path) -> bool:
    """Cheap pre-filter for file dialogs and drag-and-drop; read_image has the final word."""
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


def output_format_for(path: Path, fmt: str | None) -> str:
    """Pick the Pillow format name, preferring an explicit choice over the file's extension.

    The explicit ``fmt`` wins so a user can save ``photo.out`` as PNG; without it the extension
    is the only sensible signal, and guessing past an unknown one would surprise the user.
    """
    if fmt is not None:
        key = format_key(fmt)
        if key not in OUTPUT_FORMATS:
            raise ImageError(f"unknown output format {fmt!r} (use png, jpg, webp or tiff)")
        return OUTPUT_FORMATS[key]
    suffix = Path(path).suffix.lower().lstrip(".")
    if format_key(suffix) not in OUTPUT_FORMATS:
        shown = f"'.{suffix}'" if suffix else "(none)"
        raise ImageError(f"cannot tell the output format from the extension {shown}")
    return OUTPUT_FORMATS[format_key(suffix)]


def fills_transparency(data: ImageData, path: Path, fmt: str | None = None) -> bool:
    """Whether writing ``data`` to ``path`` (as ``fmt``) fills see-through pixels with a background.

    True for partly transparent images going to a format without alpha (JPEG). Callers use it to
    tell the user, so that the filled background is never a surprise.
    """
    if data.alpha is None or output_format_for(path, fmt) in _ALPHA_FORMATS:
        return False
    opaque = 65535 if data.alpha.dtype == np.uint16 else 255
    return bool(data.alpha.min() < opaque)


def flatten_alpha(
    rgb: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int] = DEFAULT_BACKGROUND
) -> np.ndarray:
    """Composite straight-alpha ``rgb`` over an opaque ``background``; returns new 8-bit pixels.

    ``out = (rgb * a + background * (255 - a)) / 255``, rounded, computed in blocks of rows. The
    colour stored under fully transparent pixels therefore never reaches the output: it is hidden
    content, not picture.
    """
    rgb8, alpha8 = to_8bit(rgb), to_8bit(alpha)
    bg = np.asarray([min(255, max(0, int(c))) for c in background], dtype=np.uint16)
    out = np.empty(rgb8.shape, dtype=np.uint8)
    for r0 in range(0, rgb8.shape[0], _FLATTEN_ROWS):
        r1 = r0 + _FLATTEN_ROWS
        a = alpha8[r0:r1, :, None].astype(np.uint16)
        mixed = rgb8[r0:r1].astype(np.uint16) * a + bg * (255 - a) + 127  # at most 65152
        out[r0:r1] = (mixed // 255).astype(np.uint8)
    return out


def make_preview_rgb8(data: ImageData) -> np.ndarray:
    """8-bit pixels for on-screen display, which cannot show 16 bits anyway.

    Returns H x W x 3, or H x W x 4 when there is alpha so the viewer can draw a checkerboard.
    """
    rgb = to_8bit(data.rgb)
    if data.alpha is None:
        return np.ascontiguousarray(rgb)
    return np.ascontiguousarray(np.dstack((rgb, to_8bit(data.alpha))))


def resize_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """Upscale an alpha plane smoothly (bicubic) by an integer factor, keeping its dtype.

    The network only upscales colour; alpha edges are usually soft masks for which bicubic looks
    right, and nearest-neighbour would leave visible stair steps at 2-4x. 16-bit planes go through
    Pillow's float mode because its integer 16-bit resampling is not reliably available.
    """
    if alpha.ndim != 2 or alpha.dtype not in (np.uint8, np.uint16):
        raise ValueError("alpha must be a 2-D uint8 or uint16 array")
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, not {scale!r}")
    if scale == 1:
        return alpha.copy()
    height, width = alpha.shape
    new_size = (width * scale, height * scale)
    if alpha.dtype == np.uint8:
        resized = Image.fromarray(np.ascontiguousarray(alpha)).resize(new_size, Image.Resampling.BICUBIC)
        return np.array(resized, dtype=np.uint8)
    plane = Image.fromarray(alpha.astype(np.float32))
    resized_f = np.asarray(plane.resize(new_size, Image.Resampling.BICUBIC))
    return np.clip(np.rint(resized_f), 0, 65535).astype(np.uint16)


# --------------------------------------------------------------------------------------------
# Reading


def read_image(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageData:
    """Decode an image file into upright pixels, refusing anything that would hurt the user.

    The size limit is checked from the header, before a single pixel is decoded, so a tiny file
    claiming 40000 x 40000 pixels fails in milliseconds instead of exhausting memory. EXIF
    orientation is applied here, once, so every later stage can treat pixels as upright; the
    EXIF kept for the output has its Orientation reset to 1 to stop viewers rotating it again.
    EXIF is kept from JPEG, PNG and WebP sources (a TIFF's own tags are not EXIF and are not
    copied). The file is opened read-only and never modified.
    """
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise ImageError(_read_error_message(exc)) from exc
    if stat.S_ISDIR(info.st_mode):
        raise ImageError("is a directory")
    if not stat.S_ISREG(info.st_mode):
        # Opening a FIFO or device would block or read forever.
        raise ImageError("not a regular file")
    if info.st_size == 0:
        raise ImageError("empty file")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with-block right below
    except OSError as exc:
        raise ImageError(_read_error_message(exc)) from exc
    with fh:
        im = pillow.open_image(fh)
        if im is None:
            # Pillow has no mode for 16-bit gray+alpha TIFF (which write_image produces), so it
            # cannot even identify one; tifffile gets a chance before giving up.
            decoded, _lost = tiff16.read(fh, max_pixels)
            if decoded is not None:
                return _finish(decoded, "TIFF")
            fh.seek(0)
            if _has_image_signature(fh.read(16)):
                raise corrupt()
            raise ImageError("not a supported image (cannot identify format)")
        with im:
            check_pixel_limit(im.size, max_pixels)
            return _finish(_decode(fh, im, max_pixels), im.format)


def _read_error_message(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "file not found"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EISDIR:
        return "is a directory"
    if exc.errno == errno.ENAMETOOLONG:
        return "file name too long"
    return f"cannot read file ({exc.strerror or type(exc).__name__})"


def _has_image_signature(head: bytes) -> bool:
    """Whether a file Pillow could not identify starts like a supported format nonetheless.

    Such a file is damaged rather than foreign, and saying so points the user at the right fix.
    """
    return head.startswith(
        (png16.SIGNATURE, b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM")
    ) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _decode(fh: BinaryIO, im: Image.Image, max_pixels: int) -> Decoded:
    """The file's pixels at full depth: the 16-bit codecs first, Pillow for everything else."""
    decoded: Decoded | None = None
    lost: str | None = None
    if im.format == "PNG":
        decoded = png16.read(fh, im)
    elif im.format == "TIFF":
        decoded, lost = tiff16.read(fh, max_pixels)
    if decoded is not None:
        return decoded
    decoded = pillow.decode(im)
    if lost is not None and decoded.pixels.dtype == np.uint8:
        decoded.notes = (f"16-bit TIFF read as 8-bit ({lost})",)
    return decoded


def _finish(decoded: Decoded, source_format: str | None) -> ImageData:
    """Turn file-layout pixels into the upright, always-three-channel ImageData layout."""
    pixels = apply_orientation(decoded.pixels, decoded.orientation)
    channels = pixels.shape[2]
    grayscale = channels <= 2
    colour = pixels[..., :1] if grayscale else pixels[..., :3]
    rgb = np.repeat(colour, 3, axis=2) if grayscale else np.ascontiguousarray(colour)
    alpha = np.ascontiguousarray(pixels[..., -1]) if channels in (2, 4) else None
    icc = decoded.icc_profile if isinstance(decoded.icc_profile, bytes) and decoded.icc_profile else None
    return ImageData(
        rgb=_writable(rgb),
        alpha=None if alpha is None else _writable(alpha),
        grayscale=grayscale,
        icc_profile=icc,
        exif=decoded.exif,
        source_format=source_format,
        notes=decoded.notes,
    )


def _writable(array: np.ndarray) -> np.ndarray:
    # torch.from_numpy warns on read-only arrays, and np.asarray(Pillow image) is read-only.
    return array if array.flags.writeable else array.copy()


# --------------------------------------------------------------------------------------------
# Writing


def write_image(
    path: Path,
    data: ImageData,
    *,
    fmt: str | None = None,
    quality: int = 95,
    overwrite: bool = False,
    numbered: bool = False,
    optimize: bool = True,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> Path:
    """Encode ``data`` and atomically put it at ``path``; return the path written.

    An existing file is replaced only with ``overwrite`` (the user's word). Otherwise the final
    step itself refuses (see :func:`fmen_gui.atomicfiles.publish`), so a file that appears at
    ``path`` while the image is encoded is kept: :class:`OutputExistsError` is raised, or with
    ``numbered`` the next free ``name (2).ext``, ``name (3).ext``… is taken (the GUI's policy).
    ``path`` ends up holding either its old content or the complete new image, never a
    fragment, and no temporary file survives. Format notes:

    * JPEG has no alpha channel: the image is composited over ``background`` (white by default,
      :func:`flatten_alpha`), so whatever colour lay hidden under transparent pixels is not
      revealed. :func:`fills_transparency` says in advance when that happens. JPEG and WebP are
      always 8-bit.
    * 16-bit data stays 16-bit in PNG and TIFF. Pillow cannot write 16-bit colour, so those
      files come from this module's own encoders (ICC kept; EXIF kept in PNG).
    * Grayscale sources are written as grayscale (WebP, which has none, gets three equal channels).
    * EXIF is written to JPEG, WebP and PNG with Orientation forced to 1, since pixels are upright
      (to JPEG only when it fits the 64 KB APP1 segment). TIFF output carries no EXIF.
    * The ICC profile is written unless its colour space (gray or RGB) does not match the pixels
      written, e.g. a gray profile when gray data goes to WebP as colour.
    * ``optimize`` (JPEG only) builds optimal Huffman tables: a few percent smaller files, but
      libjpeg then holds every DCT coefficient of the image (see the engine's memory plan).
    """
    path = Path(path)
    pillow_format = output_format_for(path, fmt)
    if not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ImageError(f"quality must be between 1 and 100, not {quality!r}")
    check_output_size(data.width, data.height, pillow_format, data.bit_depth, data.alpha is not None)
    return _atomic_write(
        path,
        data,
        pillow_format,
        (quality, optimize, background),
        overwrite=overwrite,
        numbered=numbered,
    )


def check_output_size(
    width: int, height: int, pillow_format: str, bit_depth: int = 8, alpha: bool = False
) -> None:
    """Refuse an output size the format cannot hold, with the reason in one line.

    The engine calls this with the size a job *will* have, before any upscaling, so an
    impossible combination fails in milliseconds instead of after minutes of work. TIFF
    without BigTIFF addresses at most 4 GiB; the bound used is the uncompressed size, since
    how well the pixels will compress is unknown until they exist.
    """
    limit = {"JPEG": _JPEG_MAX_SIDE, "WEBP": _WEBP_MAX_SIDE, "PNG": _PNG_MAX_SIDE}.get(pillow_format)
    if limit is not None and max(width, height) > limit:
        other = "PNG or TIFF" if pillow_format != "PNG" else "TIFF"
        raise ImageError(
            f"image is {width}×{height}, too large for {pillow_format} "
            f"(at most {limit} pixels per side); save as {other}"
        )
    if pillow_format == "TIFF":
        samples = 3 + int(alpha)
        raw = width * height * samples * bit_depth // 8
        if raw > _TIFF_MAX_BYTES:
            raise ImageError(
                f"image is {width}×{height}, too large for TIFF ({raw / 2**30:.1f} GiB of pixels, "
                "a TIFF file holds at most 4 GiB); save as PNG"
            )


def _encode(
    fh: BinaryIO,
    data: ImageData,
    pillow_format: str,
    quality: int,
    optimize: bool = True,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> None:
    """Pick the codec and the planes to store; the codecs write them."""
    exif = normalise_exif(data.exif)[0] if data.exif else None
    # WebP has no grayscale, so gray data is written there as colour.
    grayscale = data.grayscale and pillow_format != "WEBP"
    icc = data.icc_profile if icc_fits(data.icc_profile, grayscale) else None
    if data.bit_depth == 16 and pillow_format in ("PNG", "TIFF"):
        planes = _output_planes(data.rgb, data.alpha, grayscale)
        if pillow_format == "PNG":
            png16.encode(fh, planes, icc_profile=icc, exif=exif)
        else:
            tiff16.write(fh, planes, icc_profile=icc)
        return
    rgb, alpha = to_8bit(data.rgb), None
    if data.alpha is not None:
        if pillow_format in _ALPHA_FORMATS:
            alpha = to_8bit(data.alpha)
        else:
            rgb = flatten_alpha(data.rgb, data.alpha, background)
    planes = _output_planes(rgb, alpha, grayscale)
    pillow.encode(fh, planes, pillow_format, quality=quality, icc_profile=icc, exif=exif, optimize=optimize)


def _output_planes(rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool) -> np.ndarray:
    """Stack the channels to store: H x W x (1 gray | 2 gray+alpha | 3 RGB | 4 RGBA)."""
    colour = _gray_of(rgb)[..., None] if grayscale else rgb
    if alpha is None:
        return np.ascontiguousarray(colour)
    return np.ascontiguousarray(np.concatenate((colour, alpha[..., None]), axis=2))


def _gray_of(rgb: np.ndarray) -> np.ndarray:
    # The network returns near-gray, not exactly gray, pixels for a gray input; the rounded mean
    # of the three channels is the least biased way back to one channel.
    total = rgb.astype(np.uint32).sum(axis=2)
    return ((total + 1) // 3).astype(rgb.dtype)


def to_8bit(array: np.ndarray) -> np.ndarray:
    """16-bit samples to 8, rounded to nearest: the one rule for files and for the screen.

    (A shift by 8 bits would truncate, and progressive tiles would then differ by one level
    from the finished preview.)
    """
    if array.dtype == np.uint8:
        return array
    # 257 = 65535 / 255 maps 0 -> 0 and 65535 -> 255 exactly; +128 rounds to nearest.
    return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _atomic_write(
    path: Path,
    data: ImageData,
    pillow_format: str,
    options: tuple[int, bool, tuple[int, int, int]],
    *,
    overwrite: bool,
    numbered: bool,
) -> Path:
    """Encode into :func:`fmen_gui.atomicfiles.atomic_file`; put what fails in one line.

    ``_encode`` is looked up at call time (tests put a failing encoder in its place).
    """
    if path.is_dir():
        raise ImageError("output path is a directory")
    try:
        with atomicfiles.atomic_file(path, overwrite=overwrite, numbered=numbered) as out:
            _encode(out.file, data, pillow_format, *options)
    except atomicfiles.NameTakenError:
        raise OutputExistsError(
            f"output already exists: {path} (it appeared while this job ran and was kept; "
            "use --overwrite to replace it)"
            if not numbered
            else f"no free name for the output beside {path}"
        ) from None
    except ImageError:
        raise
    except OSError as exc:
        raise ImageError(_write_error_message(exc)) from exc
    except MemoryError:
        raise ImageError("not enough memory to encode the image") from None
    except Exception as exc:
        raise ImageError(f"cannot encode the image as {pillow_format}: {_one_line(exc)}") from exc
    # KeyboardInterrupt and SystemExit propagate unchanged (after atomic_file's cleanup): turning
    # them into ImageError would make a batch carry on with the next file after Ctrl-C.
    assert out.final is not None
    return out.final


def _write_error_message(exc: OSError) -> str:
    messages = {
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EACCES: "permission denied (the output folder is read-only or not writable)",
        errno.EPERM: "permission denied (the output folder is read-only or not writable)",
        errno.EROFS: "the output folder is on a read-only file system",
        errno.ENOENT: "output folder does not exist",
        errno.ENOTDIR: "output folder is not a folder",
        errno.EISDIR: "output path is a directory",
        errno.EFBIG: "file too large for the file system",
        errno.ENAMETOOLONG: "file name too long",
        errno.EIO: "input/output error while writing",
    }
    if exc.errno in messages:
        return messages[exc.errno]
    return f"cannot write file ({exc.strerror or _one_line(exc)})"


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
