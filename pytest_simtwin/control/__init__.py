"""Both ends of the ``/simtwin`` control protocol: typed payloads and the test-side client.

:mod:`.protocol` (service names, payload types, default topics) is shared with the simulator process
and imports nothing of ours but ``errors``; :mod:`.client` calls the services over :mod:`..ros`.
"""
