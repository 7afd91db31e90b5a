"""The clients' pure parts: Magento message placeholders, Retry-After, searchCriteria and its keyset, OAuth 1.0a
signing, path segments, Magento times.
(The clients themselves are tested against the sandbox servers over HTTP.)"""

from __future__ import annotations

import base64
import hmac
import random
import time
from datetime import UTC, datetime
from email.utils import formatdate
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header

from workers.backoff import backoff, retry_delay
from workers.clients.http import RetryPolicy, parse_retry_after
from workers.clients.magento import OAuth1Signer, fill_placeholders, magento_error_message
from workers.clients.magento_time import magento_time, parse_time
from workers.clients.paths import UnsafeSegment, segment
from workers.clients.search_criteria import Filter, SearchCriteria, keyset_criteria
from workers.errors import PermanentError


def test_magento_placeholders_list_and_dict() -> None:
    assert fill_placeholders("Invalid product data: %1", ["Invalid attribute set"]) == (
        "Invalid product data: Invalid attribute set"
    )
    assert fill_placeholders("%1 and %10", list(range(1, 11))) == "1 and 10"
    assert fill_placeholders(
        "The consumer isn't authorized to access %resources.", {"resources": "Magento_Catalog::products"}
    ) == ("The consumer isn't authorized to access Magento_Catalog::products.")
    body = {"message": "%fieldName is a required field.", "parameters": {"fieldName": "sku"}, "errors": [
        {"message": "Value %1 is bad", "parameters": ["x"]}
    ]}  # fmt: skip
    assert magento_error_message(400, body, b"") == "sku is a required field.; Value x is bad"
    assert magento_error_message(502, None, b"<html> Bad   gateway </html>") == "<html> Bad gateway </html>"


def test_retry_after_seconds_or_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    now = time.time()
    assert 9 <= parse_retry_after(formatdate(now + 10, usegmt=True), now=now) <= 10.5
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    policy = RetryPolicy(base_seconds=1, max_seconds=8, max_retry_after_seconds=30)
    assert policy.delay(1, 120) == 30  # a server's Retry-After is honoured, within reason
    assert 4 <= policy.delay(4, None) <= 8


def test_one_backoff_for_jobs_clients_admin_jobs_and_reconnects() -> None:
    assert [backoff(n, 1.0, 30.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    rng = random.Random(5)
    delays = [retry_delay(3, 0.5, 10.0, rng) for _ in range(200)]
    assert min(delays) >= 1.0 and max(delays) <= 2.0  # half jitter under the cap of the third failure
    policy = RetryPolicy(base_seconds=0.5, max_seconds=10.0)
    assert all(1.0 <= policy.delay(3, None) <= 2.0 for _ in range(50))  # the client's retries: the same formula


def test_search_criteria_groups_or_inside_and_across() -> None:
    criteria = (
        SearchCriteria(page_size=50)
        .where("state", "complete")
        .any_of(
            Filter("updated_at", "2026-01-01 00:00:00", "gteq"), Filter("created_at", "2026-01-01 00:00:00", "gteq")
        )
        .where("sku", ["A", "B"], "in")
        .order_by("updated_at")
    )
    p = criteria.params(page=3)
    assert p["searchCriteria[filter_groups][0][filters][0][field]"] == "state"
    assert p["searchCriteria[filter_groups][1][filters][1][field]"] == "created_at"
    assert p["searchCriteria[filter_groups][1][filters][1][condition_type]"] == "gteq"
    assert p["searchCriteria[filter_groups][2][filters][0][value]"] == "A,B"
    assert p["searchCriteria[sortOrders][0][direction]"] == "ASC"
    assert (p["searchCriteria[pageSize]"], p["searchCriteria[currentPage]"]) == ("50", "3")


def test_oauth1_signature_verifies_server_side() -> None:
    signer = OAuth1Signer("ck", "cs-secret", "at", "ats-secret")
    url = "http://127.0.0.1:9/rest/all/V1/products?searchCriteria%5BpageSize%5D=10&a=b%20c"
    header = signer("GET", url, {})["Authorization"]
    params = parse_authorization_header(header)
    oauth = dict(params)
    assert oauth["oauth_signature_method"] == "HMAC-SHA256" and oauth["oauth_consumer_key"] == "ck"
    query = parse_qsl(urlsplit(url).query)
    normalized = oauth_signature.normalize_parameters([(k, v) for k, v in params if k != "oauth_signature"] + query)
    base = oauth_signature.signature_base_string("GET", oauth_signature.base_string_uri(url), normalized)
    # HMAC-SHA256 keyed with consumer_secret&token_secret (RFC 5849 3.4.2), computed independently.
    digest = hmac.digest(b"cs-secret&ats-secret", base.encode(), "sha256")
    assert base64.b64encode(digest).decode() == unquote(oauth["oauth_signature"])
    assert "cs-secret" not in repr(signer) and "ats-secret" not in header


# Ids that would leave their path segment if sent as they are: climb a level, start a query or a fragment, be
# read as an escape, split the segment, or cut the URL. Each with the single segment it must travel as.
ODD_IDS = {
    "../x": "..%2Fx",
    "a?b=1": "a%3Fb%3D1",
    "a#b": "a%23b",
    "50%": "50%25",
    "a b": "a%20b",
    "a/b": "a%2Fb",
    "\x00": "%00",
}


@pytest.mark.parametrize(("value", "encoded"), [*ODD_IDS.items(), ("CR-1_a.b~c", "CR-1_a.b~c"), (42, "42")])
def test_a_path_segment_encodes_all_but_the_unreserved_characters(value: str | int, encoded: str) -> None:
    assert segment(value) == encoded


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_an_empty_or_dot_id_is_refused_for_good(value: str) -> None:
    with pytest.raises(UnsafeSegment) as info:
        segment(value)
    assert isinstance(info.value, PermanentError)  # a dead letter naming the id, not retries


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2026-03-01 10:20:30", datetime(2026, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("2026-03-01T10:20:30Z", datetime(2026, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("2026-03-01T12:20:30+02:00", datetime(2026, 3, 1, 10, 20, 30, tzinfo=UTC)),
    ],
)
def test_magento_times_are_read_as_utc_and_written_its_way(value: str, moment: datetime) -> None:
    assert parse_time(value) == moment
    assert magento_time(parse_time(value)) == "2026-03-01 10:20:30"


def test_keyset_criteria_ask_for_what_comes_after_the_last_row() -> None:
    where = [Filter("state", "complete")]
    first = keyset_criteria("updated_at", "2026-01-01 00:00:00", None, where, 50).params()
    assert first["searchCriteria[filter_groups][1][filters][0][condition_type]"] == "gteq"
    assert "searchCriteria[filter_groups][2][filters][0][field]" not in first
    after = keyset_criteria("updated_at", "2026-01-01 00:00:00", ("2026-01-02 00:00:00", 7), where, 50).params()
    assert after["searchCriteria[filter_groups][0][filters][0][field]"] == "state"
    assert after["searchCriteria[filter_groups][1][filters][0][value]"] == "2026-01-02 00:00:00"
    group = "searchCriteria[filter_groups][2][filters]"
    assert (after[f"{group}[0][field]"], after[f"{group}[0][condition_type]"]) == ("updated_at", "gt")
    assert (after[f"{group}[1][field]"], after[f"{group}[1][value]"]) == ("entity_id", "7")
    assert after["searchCriteria[sortOrders][1][field]"] == "entity_id"
    assert after["searchCriteria[currentPage]"] == "1"
