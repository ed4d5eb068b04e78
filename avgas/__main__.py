import sys

from avgas.cli import main

sys.exit(main())
