"""16-bit TIFF through tifffile: Pillow reads 16-bit RGB(A) TIFF as 8-bit and cannot write it.

tifffile (with imagecodecs for Deflate, LZW and the rest) reads every layout editors write
(strips or tiles, contiguous or separate planes, BigTIFF) and writes the one this app
produces: Deflate with horizontal prediction, which roughly halves photographic 16-bit data
and which every mainstream TIFF reader supports. It also reads 16-bit gray+alpha, a layout
Pillow cannot even identify. 8-bit TIFF stays with Pillow.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

import numpy as np

from fmen_gui.engine.codecs.decoded import Decoded, check_pixel_limit, corrupt
from fmen_gui.engine.codecs.output import PythonWrites
from fmen_gui.errors import ImageError

_STRIP_BYTES = 256 << 10  # uncompressed bytes per strip: small enough to stream, big enough to pack
_LEVEL = 6  # zlib level, as for the other lossless outputs
_SILENT = logging.NullHandler()


def read(fh: BinaryIO, max_pixels: int) -> tuple[Decoded | None, str | None]:
    """Decode the first image of a 16-bit TIFF at 16 bits.

    Returns ``(pixels, None)``; ``(None, None)`` when the file is not a TIFF tifffile can parse
    or its first image is not 16-bit (Pillow then reads it as before); ``(None, reason)`` when
    it is 16-bit but cannot be read at 16 bits here (signed, float, premultiplied...), so the
    caller can say so instead of silently dropping to Pillow's 8 bits.
    """
    position = fh.tell()
    try:
        import tifffile  # imported on first use: the GUI thread imports the engine at start-up
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        return None, "tifffile is not installed"
    # tifffile logs its complaints about odd files; unconfigured, Python would print them on
    # stderr, between the command line's one-line messages. The outcome is reported instead.
    logging.getLogger("tifffile").addHandler(_SILENT)
    try:
        fh.seek(0)
        with tifffile.TiffFile(fh) as tif:
            page = tif.pages.first
            spp = int(page.samplesperpixel)
            extra = tuple(page.extrasamples or ())
            if int(page.bitspersample) != 16:
                return None, None
            if int(page.sampleformat) != 1 or int(page.photometric) not in (1, 2):
                return None, "signed, float or non-RGB samples"
            if any(e == 1 for e in extra):
                return None, "premultiplied alpha"
            if spp not in ((1, 2) if int(page.photometric) == 1 else (3, 4)):
                return None, "unusual sample layout"
            check_pixel_limit((int(page.imagewidth), int(page.imagelength)), max_pixels)
            separate, depth, height, width, contig = page.shaped
            if depth != 1 or separate * contig != spp:
                return None, "unusual sample layout"
            orientation_tag = page.tags.get(274)
            icc_tag = page.tags.get(34675)
            try:
                array = page.asarray(squeeze=False, maxworkers=1)
            except MemoryError:
                raise
            except Exception as exc:
                # imagecodecs has every codec Pillow's libtiff has: a failure here is bad data.
                raise corrupt() from exc
    except ImageError:
        raise
    except MemoryError:
        raise ImageError("not enough memory to decode the image") from None
    except Exception:
        return None, None  # not a TIFF tifffile can parse: Pillow has the last word
    finally:
        fh.seek(position)
    pixels = np.moveaxis(array[:, 0], 0, -1).reshape(height, width, spp).astype(np.uint16, copy=False)
    if spp in (2, 4) and extra[:1] != (2,):
        pixels = pixels[..., :-1]  # an unspecified extra sample, not alpha (as Pillow does)
    orientation = orientation_tag.value if orientation_tag is not None else 1
    icc = icc_tag.value if icc_tag is not None else None
    return (
        Decoded(
            pixels=np.ascontiguousarray(pixels),
            icc_profile=bytes(icc) if isinstance(icc, bytes | bytearray) and icc else None,
            exif=None,
            orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1,
        ),
        None,
    )


def write(fh: BinaryIO, pixels: np.ndarray, *, icc_profile: bytes | None = None) -> None:
    """Write H x W x C uint16 pixels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as a classic TIFF.

    Deflate, horizontal prediction, straight (unassociated) alpha, 72 dpi, the ICC profile when
    given, and no tags beyond those: no EXIF (a TIFF's own tags are not EXIF), no software or
    shape description.
    """
    import tifffile  # imported on first use: the GUI thread imports the engine at start-up

    _height, width, channels = pixels.shape
    try:
        tifffile.imwrite(
            PythonWrites(fh),
            pixels[..., 0] if channels == 1 else pixels,
            bigtiff=False,
            photometric="minisblack" if channels <= 2 else "rgb",
            planarconfig="contig" if channels > 1 else None,
            extrasamples=("unassalpha",) if channels in (2, 4) else None,
            compression="zlib",
            compressionargs={"level": _LEVEL},
            predictor=2,
            rowsperstrip=max(1, _STRIP_BYTES // max(1, width * channels * 2)),
            resolution=(72, 72),
            resolutionunit="inch",
            iccprofile=icc_profile or None,
            metadata=None,
            software="",
            maxworkers=1,
        )
    except ValueError as exc:
        if "BigTIFF" in str(exc):
            raise ImageError("image is too large for TIFF (over 4 GB compressed)") from None
        raise
