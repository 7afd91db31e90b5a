"""Authentication as an integration sees it: OAuth 1.0a signed requests (HMAC-SHA256 as the docs require,
HMAC-SHA1 as the framework also accepts) and, when the store allows it, the access token as a Bearer.

Signatures are checked with oauthlib's rfc5849 signature functions over the URL as received, query included
(searchCriteria parameters are signed too). Nonces are single-use per consumer and timestamps may not be more
than 10 minutes ahead, as in Magento's nonce generator. Without valid credentials a protected route answers
401 "The consumer isn't authorized to access %resources."; an invalid OAuth header is refused on any route.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature as oauth_signature

from sandbox.magento.config import MagentoSandboxConfig
from sandbox.magento.errors import MagentoError, not_authorized
from sandbox.magento.routing import ACL, ANONYMOUS, Handler

CONSUMER_ID = 1  # the integration's consumer id, as Magento numbers it in messages
TIMESTAMP_AHEAD_SECONDS = 600
MAX_NONCES = 200_000
_VERIFY = {"HMAC-SHA256": oauth_signature.verify_hmac_sha256, "HMAC-SHA1": oauth_signature.verify_hmac_sha1}


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())  # bytes: any characters, constant time


def _oauth_error(message: str, *parameters: object) -> MagentoError:
    return MagentoError(401, message, list(parameters) or None)


class Authenticator:
    def __init__(self, config: MagentoSandboxConfig) -> None:
        self.config = config
        self._nonces: OrderedDict[str, None] = OrderedDict()

    def authenticate(self, request: web.Request, resource: str) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "oauth":
            self._verify_oauth(request, header)
            return
        if resource == ANONYMOUS:
            return
        if scheme.lower() == "bearer" and self.config.bearer_enabled:
            if _same(credentials.strip(), self.config.effective_bearer()):
                return
        raise not_authorized(resource)

    def _verify_oauth(self, request: web.Request, header: str) -> None:
        try:
            # unescaped protocol parameters of the header, realm left out
            params = oauth_signature.collect_parameters(
                headers={"Authorization": header}, exclude_oauth_signature=False, with_realm=False
            )
        except ValueError:
            raise _oauth_error("The signature is invalid. Verify and try again.") from None
        oauth = dict(params)
        if len(oauth) != len(params):
            raise _oauth_error("The signature is invalid. Verify and try again.")
        for name in ("oauth_consumer_key", "oauth_token", "oauth_signature_method", "oauth_nonce", "oauth_timestamp",
                     "oauth_signature"):  # fmt: skip
            if not oauth.get(name):
                raise _oauth_error('"%1" is required. Enter and try again.', name)
        method = oauth["oauth_signature_method"]
        verify = _VERIFY.get(method)
        if verify is None:
            raise _oauth_error("Signature method %1 is not supported", method)
        if oauth.get("oauth_version", "1.0") != "1.0":
            raise _oauth_error("OAuth version %1 is not supported", oauth["oauth_version"])
        try:
            timestamp = int(oauth["oauth_timestamp"])
        except ValueError:
            timestamp = 0
        if timestamp <= 0 or timestamp > time.time() + TIMESTAMP_AHEAD_SECONDS:
            raise _oauth_error("Incorrect timestamp value in the oauth_timestamp parameter")
        if not _same(oauth["oauth_consumer_key"], self.config.consumer_key.get_secret_value()):
            raise _oauth_error("A consumer having the specified key does not exist")
        if not _same(oauth["oauth_token"], self.config.access_token.get_secret_value()):
            raise _oauth_error("Specified token does not exist")

        # The base string is built from the URL as it arrived; the query is decoded here rather than by
        # oauthlib's strict urldecode, which refuses unencoded brackets that Magento accepts.
        raw = request.raw_path
        uri = f"{request.scheme}://{request.host}{urlsplit(raw).path}"
        signed = OAuthRequest(uri, request.method)
        signed.params = [(k, v) for k, v in params if k not in ("oauth_signature", "realm")] + parse_qsl(
            urlsplit(raw).query, keep_blank_values=True
        )
        signed.signature = oauth["oauth_signature"]
        if not verify(
            signed, self.config.consumer_secret.get_secret_value(), self.config.access_token_secret.get_secret_value()
        ):
            raise _oauth_error("The signature is invalid. Verify and try again.")
        nonce = oauth["oauth_nonce"]
        if nonce in self._nonces:
            raise _oauth_error("The nonce is already being used by the consumer with ID %1.", CONSUMER_ID)
        self._nonces[nonce] = None
        if len(self._nonces) > MAX_NONCES:
            self._nonces.popitem(last=False)


def auth_middleware(authenticator: Authenticator) -> web.middleware:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.app[ACL].get(request.match_info.route)
        if resource is not None:
            authenticator.authenticate(request, resource)
        return await handler(request)

    return authenticate
