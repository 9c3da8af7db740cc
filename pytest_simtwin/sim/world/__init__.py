"""Robot and world descriptions -> specs: SDF and URDF readers, meshes, resource URIs, Gazebo plugins, MJCF.

Part of the simulator process: may import only ``sim.world`` itself, ``control.protocol`` and ``errors``.
"""
