"""Whether an email can be an account's key on both sides.

Cloud Retailer's check is loose (`name@domain.tld`) and so is what a Magento admin may type; Magento's own
validator (Laminas EmailAddress) is stricter. Checking here, before any write, fails the customer with one
clear reason instead of a half-done sync (an account created on one side that the other refuses).
"""

from __future__ import annotations

import re

MAX_LENGTH = 254
MAX_LOCAL = 64
# RFC 5322 dot-atom: atext runs separated by single dots (no quoted local parts: Magento refuses them).
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_TLD = re.compile(r"^([A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$")


def email_problem(email: str) -> str | None:
    """None when the address is usable, else what is wrong with it (for the event log)."""
    if email != email.strip() or not email:
        return "it is empty or has surrounding spaces"
    if len(email) > MAX_LENGTH:
        return f"it is longer than {MAX_LENGTH} characters"
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "it has no name@domain form"
    if len(local) > MAX_LOCAL or not _LOCAL.match(local):
        return f"the part before @ ({local!r}) is not a valid mailbox name"
    try:
        ascii_domain = domain.encode("idna").decode("ascii")  # internationalised domains in their ASCII form
    except UnicodeError:
        return f"the domain {domain!r} is not a valid host name"
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or not _TLD.match(labels[-1]):
        return f"the domain {domain!r} is not a valid host name"
    return None
