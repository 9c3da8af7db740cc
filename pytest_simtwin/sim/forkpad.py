"""What the fork server's client and the server agree on: the padding of the server's environment and argv.

The server starts with this much padding in its environment and command line, so that a child can
write its own into the same memory: /proc/<pid>/environ and cmdline then show the simulator's
ROS_DOMAIN_ID, GZ_PARTITION and arguments (reapers, `ps` and `pgrep -f` find it like any process).
A module of its own so the test process (backends/forkclient.py) need not import the server.
"""

ENV_PAD_VAR = "SIMTWIN_FORKSERVER_PAD"
ENV_PAD = 64 * 1024
ARGV_PAD = 1024
