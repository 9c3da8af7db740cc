"""``python -m safety_stop [--ros-args -p stop_distance:=0.5 ...]``"""

from .node import main

raise SystemExit(main())
