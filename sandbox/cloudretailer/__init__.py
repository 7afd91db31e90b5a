"""Sandbox Cloud Retailer server: the contract in docs/cloudretailer-api.md, served from memory."""

from sandbox.cloudretailer.app import create_app
from sandbox.cloudretailer.config import CloudRetailerSandboxConfig

__all__ = ["CloudRetailerSandboxConfig", "create_app"]
