"""The file formats behind :mod:`fmen_gui.engine.images`, one module per job.

``images`` is the public API (``ImageData``, ``read_image``, ``write_image``); these modules
hold what it delegates, so each codec can be read, tested and replaced on its own:

* :mod:`.pillow` — every 8-bit format, through Pillow (decoders restricted, errors translated).
* :mod:`.png16` — 16-bit PNG through imagecodecs' libpng, which Pillow cannot do at 16 bits.
* :mod:`.png_adam7` — the one PNG case libpng cannot do quietly: interlaced 16-bit files.
* :mod:`.tiff16` — 16-bit TIFF through tifffile.
* :mod:`.metadata` — what no library here does for us: EXIF orientation patched in place,
  orientation applied to pixels of any depth, ICC profiles matched to the pixels written.
* :mod:`.decoded` — the pixels-plus-metadata record every decoder returns.
* :mod:`.output` — the file object encoders write to (every byte through Python).

Like ``images``, nothing here imports torch or Qt, and the libraries that are only needed for
16-bit files (imagecodecs, tifffile) are imported on first use, off the GUI's start-up path.
"""
