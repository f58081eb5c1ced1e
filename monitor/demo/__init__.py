"""The bundled simulated site used by `monitor demo` and the end-to-end tests.

Everything runs on loopback: nothing here ever reaches the internet.
"""

from monitor.demo.site import (
    RAYNAUDS_URL,
    TREATMENTS_URL,
    SimulatedSite,
    SimulatedSiteServer,
    build_app,
    start_simulated_site,
)

__all__ = [
    "RAYNAUDS_URL",
    "TREATMENTS_URL",
    "SimulatedSite",
    "SimulatedSiteServer",
    "build_app",
    "start_simulated_site",
]
