"""``playgate demo``: the whole system on loopback with the bundled sample video.

The sample (``samples/``) and the player page (``player/``) ship inside this package, so the demo
runs the same from a checkout and from an installed wheel.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "samples"
PLAYER_DIR = HERE / "player"
DEMO_VIDEO = "demo"
