"""A safety stop for a mobile base: forwards /cmd_vel_in to /cmd_vel, zeroing forward motion when
the lidar sees an obstacle closer than ``stop_distance`` ahead. Turning and reversing stay allowed."""

from .logic import gate, min_range_ahead

__all__ = ["gate", "min_range_ahead"]
