"""The ROS 2 node (rclpy): /cmd_vel_in + /scan -> /cmd_vel, and /safety_stop/blocked (std_msgs/Bool)."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import rclpy
from geometry_msgs.msg import Twist
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import LaserScan
from std_msgs.msg import Bool

from .logic import gate, min_range_ahead


class SafetyStop(Node):
    """Forwards velocity commands and zeroes forward motion when an obstacle is too close ahead."""

    def __init__(self) -> None:
        super().__init__("safety_stop")
        self.stop_distance = float(self.declare_parameter("stop_distance", 0.5).value)
        self.half_angle = math.radians(float(self.declare_parameter("sector_half_angle", 20.0).value))
        input_topic = str(self.declare_parameter("input_topic", "/cmd_vel_in").value)
        output_topic = str(self.declare_parameter("output_topic", "/cmd_vel").value)
        scan_topic = str(self.declare_parameter("scan_topic", "/scan").value)
        # Watchdog: no scan for this long (sim seconds with use_sim_time) means blind: stop. 0 disables it.
        self.scan_timeout = float(self.declare_parameter("scan_timeout", 0.3).value)
        self.distance_ahead = math.inf
        self.have_scan = False
        self.last_scan_at: float | None = None
        self.stale = False
        self.last_cmd = Twist()
        self.blocked = False
        self.pub = self.create_publisher(Twist, output_topic, 10)
        self.state_pub = self.create_publisher(Bool, "/safety_stop/blocked", 10)
        self.create_subscription(Twist, input_topic, self.on_cmd, 10)
        # Best effort matches both reliable and best-effort lidar publishers.
        self.create_subscription(LaserScan, scan_topic, self.on_scan, qos_profile_sensor_data)
        if self.scan_timeout > 0:
            self.create_timer(min(self.scan_timeout / 3, 0.05), self.watchdog)
        self.get_logger().info(
            f"stop_distance {self.stop_distance:.2f} m, scan timeout {self.scan_timeout:.2f} s, sector +/-{math.degrees(self.half_angle):.0f} deg, "
            f"{input_topic} -> {output_topic}, scan {scan_topic}"
        )

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def watchdog(self) -> None:
        """Scans stopped (sensor fault, crashed driver): what is ahead is unknown, so forward motion stops."""
        if self.last_scan_at is None or self.stale:
            return
        if self.now() - self.last_scan_at > self.scan_timeout:
            self.stale = True
            self.get_logger().warning(f"no scan for {self.scan_timeout:.2f} s: stopping until scans return")
            self.state_pub.publish(Bool(data=True))
            self.send(self.last_cmd)

    def on_scan(self, scan: LaserScan) -> None:
        self.have_scan = True
        self.last_scan_at = self.now()
        self.stale = False
        self.distance_ahead = min_range_ahead(
            scan.ranges, scan.angle_min, scan.angle_increment, self.half_angle, scan.range_min, scan.range_max
        )
        blocked = self.distance_ahead < self.stop_distance
        if blocked and not self.blocked:
            self.get_logger().info(f"obstacle {self.distance_ahead:.3f} m ahead: stopping")
        self.blocked = blocked
        self.state_pub.publish(Bool(data=blocked))
        # Do not wait for the next command: stop now if the last one drives into the obstacle.
        if blocked and self.last_cmd.linear.x > 0.0:
            self.send(self.last_cmd)

    def on_cmd(self, cmd: Twist) -> None:
        self.last_cmd = cmd
        self.send(cmd)

    def send(self, cmd: Twist) -> None:
        # Without a scan yet nothing is known about what is ahead: only turning is safe.
        distance = self.distance_ahead if self.have_scan and not self.stale else 0.0
        linear, angular = gate(cmd.linear.x, cmd.angular.z, distance, self.stop_distance)
        out = Twist()
        out.linear.x = linear
        out.angular.z = angular
        self.pub.publish(out)


def main(argv: Sequence[str] | None = None) -> int:
    rclpy.init(args=list(sys.argv if argv is None else argv))
    node = SafetyStop()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
