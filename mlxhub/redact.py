"""Secrets kept out of sight: the passwords in URLs and connection strings (a database URL,
an MLflow tracking URI, a NATS URL) masked, for everything the hub prints, logs, stores
in events or returns in answers. Only the secret part goes: the user, host, port and
path stay, so the text still says where the thing is."""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@host — the password runs to the last '@' of the authority
# (authority ends at the first '/', '?', '#' or whitespace), as urllib.parse reads it; an empty
# password (`postgres:@host`) has nothing to hide.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s@:]*:)[^/?#\s]+(?=@)")
# password=... in a query string or a libpq keyword/value string, quoted or not.
_SECRET_PARAMETER = re.compile(
    r"(?P<head>(?:^|(?<=[?&;\s]))(?:password|sslpassword|passwd|pwd|secret|token|access_token|api_key|apikey)\s*=\s*)"
    r"(?:'(?:[^'\\]|\\.)*'|[^&;#\s]*)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with every credential in a URL or connection string replaced by ***."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    return _SECRET_PARAMETER.sub(lambda m: m.group("head") + MASK, text)
