"""CSRF tokens: an HMAC of the session cookie (or, before log-in, of an anonymous cookie).

Every state-changing request (POST, PUT, PATCH, DELETE; sign-up and log-in included) must
carry the token, in the ``X-CSRF-Token`` header (the JSON API, the viewer's scripts) or in a
``csrf_token`` form field (the HTML forms). The token is ``HMAC-SHA256(secret, binding)``
where the binding is ``"s:" + session cookie`` for a logged-in browser and
``"a:" + anonymous cookie`` before (every browser gets a random anonymous cookie on its first
visit). A page of another site can make the browser send the cookies, but cannot read them
nor this page, so it cannot produce the token ("signed double-submit cookie"). Nothing is
stored on the server; a new log-in changes the token.

Examples
--------
>>> t = token_for(b"k" * 32, "s:abc")
>>> valid(b"k" * 32, "s:abc", t), valid(b"k" * 32, "s:abd", t), valid(b"k" * 32, "s:abc", None)
(True, False, False)
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "token_for", "valid"]

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


def token_for(secret: bytes, binding: str) -> str:
    """The CSRF token of a binding (see the module docstring)."""
    return hmac.new(secret, ("csrf:" + binding).encode(), hashlib.sha256).hexdigest()


def valid(secret: bytes, binding: str | None, supplied: str | None) -> bool:
    """Whether ``supplied`` is the token of ``binding`` (compared in constant time)."""
    if not binding or not supplied or len(supplied) != 64 or not supplied.isascii():
        return False  # compare_digest refuses non-ASCII text
    return hmac.compare_digest(token_for(secret, binding), supplied)
