"""`python -m clbench` is the `clbench` command."""
import sys

from clbench.cli import main

sys.exit(main())
