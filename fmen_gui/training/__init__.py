"""The trainer: ``python -m fmen_gui.training`` (see ``__main__`` for the commands)."""
