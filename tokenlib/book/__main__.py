import sys

from tokenlib.book.toc import main

sys.exit(main())
