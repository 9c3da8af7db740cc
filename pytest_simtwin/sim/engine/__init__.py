"""The physics side of the simulator: MuJoCo model, DiffDrive, odometry, lidar ray casting.

Part of the simulator process: may import ``sim.world``, ``control.protocol`` and ``errors``.
"""
