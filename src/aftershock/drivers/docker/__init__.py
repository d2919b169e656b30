"""The Docker driver: faults and healing actions on containers.

The Docker SDK is imported only by the modules that talk to the daemon
(``driver``, ``daemon``); ``select`` holds the selection rules as pure logic.
"""

from aftershock.drivers.docker.driver import ClientFactory, DockerDriver

__all__ = ["ClientFactory", "DockerDriver"]
