"""`python -m skipnative` is the `skip` command."""

import sys

from skipnative.cli.main import main

sys.exit(main())
