import sys

from msport.cli import main

sys.exit(main())
