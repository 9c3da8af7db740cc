#!/bin/sh
# Entrypoint of the simtwin Gazebo image: source ROS, then let pytest_simtwin.backends.gazebo check the world,
# gz and ros2, write the bridge YAML and supervise `gz sim` + `parameter_bridge`.
#   docker run --network host -e ROS_DOMAIN_ID=5 -e GZ_PARTITION=p5 -v $PWD/worlds:$PWD/worlds:ro \
#       pytest-simtwin/gazebo:jazzy $PWD/worlds/my_world.sdf
# Arguments: [--dry-run] [--model NAME] WORLD (or SIMTWIN_WORLD).
set -u
distro="${ROS_DISTRO:-}"
if [ -n "$distro" ] && [ -f "/opt/ros/$distro/setup.sh" ]; then
  # setup.sh reads unset variables
  set +u
  . "/opt/ros/$distro/setup.sh"
  set -u
fi
PYTHON="${SIMTWIN_PYTHON:-python3}"
exec "$PYTHON" -m pytest_simtwin.backends.gazebo run "$@"
