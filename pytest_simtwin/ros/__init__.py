"""ROS 2 plumbing with no simulator knowledge: the private rclpy context, the DDS environment, domain leases.

Owns the test process's ROS side (:mod:`.session`), the environment every process of a domain runs
with (:mod:`.environment`, Fast DDS profile), cross-process ROS_DOMAIN_ID leases (:mod:`.domains`) and
message conversions (:mod:`.messages`). May import ``errors``, ``_internal`` and ``control.protocol``.
"""
