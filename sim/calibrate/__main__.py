import sys

from sim.calibrate.commands import main

sys.exit(main())
