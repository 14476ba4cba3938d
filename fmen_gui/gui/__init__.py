"""The PySide6 desktop app.

Everything here is torch-free except :mod:`fmen_gui.gui.worker`, which imports the engine
inside its worker-thread slots, so the window appears before torch loads.
"""
