"""The Toxiproxy driver: faults and healing actions on Toxiproxy servers (and the embedded one).

An adapter over the HTTP API, not an SDK: ``client`` speaks the API, the other
modules decide what aftershock does with it. httpx is imported only here.
"""

from aftershock.drivers.toxiproxy.driver import (
    PROXY,
    EmbeddedServer,
    ToxiproxyDriver,
    toxic_attributes,
    toxic_name,
)

__all__ = ["PROXY", "EmbeddedServer", "ToxiproxyDriver", "toxic_attributes", "toxic_name"]
