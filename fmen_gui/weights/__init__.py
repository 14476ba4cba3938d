"""Weights files: safe loading, the installed-weights registry and the official download.

Nothing is imported here on purpose. ``registry``, ``fetch`` and ``files`` are torch-free so the
GUI can list and fetch weights at start-up without paying for torch; only ``loading`` imports
torch, and only when a file is actually read.
"""
