#!/usr/bin/env python
"""``python tools/test.py ...``: the same as ``python -m mae_transfer.test ...`` (mmdet-style entry point)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's mae_transfer, run from anywhere

from mae_transfer.test import *  # noqa: E402,F401,F403  (parse_args, main, ... for scripts that import this file)
from mae_transfer.test import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
