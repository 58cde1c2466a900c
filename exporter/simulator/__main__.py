"""``python -m exporter.simulator``: see exporter.simulator.cli."""

import sys

from exporter.simulator.cli import main

sys.exit(main())
