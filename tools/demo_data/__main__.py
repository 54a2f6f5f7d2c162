"""`python -m tools.demo_data`: write the bundled demo dataset."""

import sys

from tools.demo_data.prices import main

sys.exit(main())
