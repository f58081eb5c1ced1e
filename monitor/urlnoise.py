"""What in a URL names a visit, not a page: session ids.

A cookieless site hands out a new session id in every link (";jsessionid=...",
"?PHPSESSID=..."), and a redirect may add one to the address it answers. The
crawler drops them so that a page is one URL (`sites.without_session`); the
classifier drops those a 301 added, so that such a redirect is no move and
no session URL is ever suggested to an editor (`classify._without_added_noise`).
One list for both, so that a server learnt by one is known to the other.
Pure: no I/O.
"""

from __future__ import annotations

import re

__all__ = ["PATH_SESSION", "SESSION_KEY"]

PATH_SESSION = re.compile(r";(?:jsessionid|phpsessid|sessionid)=[^/?#]*", re.I)
"""A session id in the path (Java servlets, some PHP setups): ";jsessionid=A1B2"."""

SESSION_KEY = re.compile(
    r"(?:j?sessionid|session_id|phpsessid|aspsessionid\w*|cfid|cftoken|oscsid|zenid)", re.I)
"""Query keys that always hold a session id (fullmatch). "sid" is not among
them: a session id in phpBB and many CMSs, a story or section id in others;
each caller decides (see there)."""
