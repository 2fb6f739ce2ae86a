import sys

from tokenlib.data.check import main

sys.exit(main())
