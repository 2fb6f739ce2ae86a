import sys

from tokenlib.data.loader import main

sys.exit(main())
