"""Sandbox Magento 2 and Cloud Retailer servers for tests, benchmarks and the demo."""
