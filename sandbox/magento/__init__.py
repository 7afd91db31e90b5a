"""A Magento 2 REST server that behaves like the real one for the connector's routes."""

from sandbox.magento.app import create_app
from sandbox.magento.config import MagentoSandboxConfig

__all__ = ["MagentoSandboxConfig", "create_app"]
