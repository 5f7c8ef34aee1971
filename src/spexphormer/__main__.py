import sys

from spexphormer.cli import main

sys.exit(main())
