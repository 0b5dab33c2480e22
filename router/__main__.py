"""``python -m router`` is ``omniroute``."""

from router.cli import run

run()
