"""`python -m simgan` is the `simgan` command."""

import sys

from simgan.cli import main

sys.exit(main())
