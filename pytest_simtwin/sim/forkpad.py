"""What the fork server's client and the server agree on: the padding of its environment and argv, an exit code.

The server starts with this much padding in its environment and command line, so that a child can
write its own into the same memory: /proc/<pid>/environ and cmdline then show the simulator's
ROS_DOMAIN_ID, GZ_PARTITION and arguments (reapers, `ps` and `pgrep -f` find it like any process).
A module of its own so the test process (backends/forkclient.py) need not import the server.
"""

ENV_PAD_VAR = "SIMTWIN_FORKSERVER_PAD"
ENV_PAD = 64 * 1024
ARGV_PAD = 1024

#: Exit code of a forked child that failed before the simulator's own code ran (or raised past it):
#: the server went away between fork and set-up, a request it could not apply (a removed working
#: directory), a crash in its set-up. The client then starts the same simulator as a fresh process.
EXIT_FORK_FAILED = 70  # EX_SOFTWARE
