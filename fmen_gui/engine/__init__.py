"""Image I/O, devices, tiling and the upscaling pipeline.

Deliberately empty of re-exports: ``fmen_gui.engine.images`` is torch-free and the GUI thread
imports it, while ``pipeline`` pulls in torch and is only imported by the worker and the CLI.
This package never imports Qt (checked by import-linter).
"""
