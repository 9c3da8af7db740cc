"""Basic motion tests for a differential-drive robot, written the way the ROS 2 tutorials do it.

Start a simulator (e.g. `simtwin-sim`, or Gazebo with the ros_gz bridge) and run:

    python -m unittest test_basic_motion_tutorial.py
"""

import math
import time
import unittest

import rclpy
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry


def yaw_from_quaternion(q):
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


class TestBasicMotion(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node("basic_motion_test")
        cls.pub = cls.node.create_publisher(Twist, "/cmd_vel", 10)
        cls.odom = None
        cls.node.create_subscription(Odometry, "/odom", cls.odom_callback, 10)
        # wait for the simulator
        start = time.time()
        while cls.odom is None and time.time() - start < 10.0:
            rclpy.spin_once(cls.node, timeout_sec=0.1)
        if cls.odom is None:
            raise RuntimeError("no odometry received on /odom - is the simulator running?")

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    @classmethod
    def odom_callback(cls, msg):
        cls.odom = msg

    def drive(self, linear, angular, duration):
        twist = Twist()
        twist.linear.x = linear
        twist.angular.z = angular
        start = time.time()
        while time.time() - start < duration:
            self.pub.publish(twist)
            rclpy.spin_once(self.node, timeout_sec=0.1)

    def stop(self):
        self.drive(0.0, 0.0, 1.0)

    def test_forward(self):
        self.stop()
        x0 = self.odom.pose.pose.position.x
        y0 = self.odom.pose.pose.position.y
        self.drive(0.5, 0.0, 2.0)
        self.stop()
        distance = math.hypot(self.odom.pose.pose.position.x - x0, self.odom.pose.pose.position.y - y0)
        self.assertGreater(distance, 0.8)
        self.assertLess(distance, 1.2)

    def test_rotation(self):
        self.stop()
        yaw0 = yaw_from_quaternion(self.odom.pose.pose.orientation)
        self.drive(0.0, 0.5, 3.0)
        self.stop()
        yaw1 = yaw_from_quaternion(self.odom.pose.pose.orientation)
        turned = math.atan2(math.sin(yaw1 - yaw0), math.cos(yaw1 - yaw0))
        self.assertAlmostEqual(turned, 1.5, delta=0.3)

    def test_stop(self):
        self.drive(0.3, 0.0, 1.0)
        self.stop()
        self.assertLess(abs(self.odom.twist.twist.linear.x), 0.05)


if __name__ == "__main__":
    unittest.main()
