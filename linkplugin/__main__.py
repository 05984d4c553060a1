import sys

from linkplugin.cli import main

sys.exit(main())
