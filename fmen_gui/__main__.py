"""``python -m fmen_gui``: open the desktop app (the ``fmen-gui`` script points here too).

Kept to a bare hand-off so that starting the app imports Qt and nothing heavy.
"""

from __future__ import annotations

import sys

from fmen_gui.gui.app import main

if __name__ == "__main__":
    sys.exit(main())
