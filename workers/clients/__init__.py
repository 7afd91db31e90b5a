"""Typed async clients for the two remote systems (the adapters): one talks to Magento's REST API, one to
Cloud Retailer's API. Each holds one aiohttp session, a concurrency limit and the retry policy."""
