"""The embedded headless simulator: MuJoCo physics behind real ROS 2 topics (``simtwin-sim``)."""
