"""The Kubernetes driver: faults and healing actions on one cluster.

The ``kubernetes`` SDK is imported only by the adapter modules (``driver``,
``api``, ``changes``, ``faults``, ``watch``); ``select`` and ``status`` are pure
rules on the API's JSON and import no SDK.
"""

from aftershock.drivers.kubernetes.driver import ApiFactory, KubernetesDriver

__all__ = ["ApiFactory", "KubernetesDriver"]
