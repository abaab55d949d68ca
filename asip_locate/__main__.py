"""``python -m asip_locate``: the asip-locate command."""

import sys

from asip_locate.cli import main

sys.exit(main())
