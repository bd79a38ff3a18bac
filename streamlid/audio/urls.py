"""Network inputs: what counts as a URL, which ffmpeg protocols each may use, and redaction.

A URL's credentials (`user:pass@`) and tokens (`?token=…`, `key=`, `sig=`…) must never reach an
output: stream names, descriptions, events, logs and error messages all carry `redact(url)`.
Only the ffmpeg child is given the real URL.
"""

from __future__ import annotations

import re

# Scheme -> the protocols ffmpeg may open for it (-protocol_whitelist): the scheme itself and
# what it runs over, so a playlist or a redirect cannot reach a local file or another protocol.
PROTOCOLS_BY_SCHEME = {
    "http": "http,https,tcp,tls,crypto",  # HLS playlists fetch segments over http(s), crypto
    "https": "http,https,tcp,tls,crypto",
    "icecast": "http,tcp",
    "rtmp": "rtmp,rtmps,tcp,tls",
    "rtmps": "rtmp,rtmps,tcp,tls",
    "rtsp": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
    "srt": "srt,udp",
    "udp": "udp,rtp",
    "rtp": "rtp,udp",
    "tcp": "tcp",
}
FILE_PROTOCOLS = "file"  # a local file is only ever a file
# Schemes whose files (responses with a length) ffmpeg resumes with a range request when their
# connection drops (its http protocol's -reconnect; a response without a length is left alone).
RESUMABLE_SCHEMES = ("http", "https")
PIPE_PROTOCOLS = "pipe"  # a pipe (stdin, a FIFO) reaches ffmpeg as its own standard input
URL_PREFIXES = tuple(f"{scheme}://" for scheme in PROTOCOLS_BY_SCHEME if scheme != "icecast")

REDACTED = "***"
# Query keys whose values are secrets (matched case-insensitively, also as suffixes such as
# access_token or api_key).
SECRET_KEYS = (
    "token",
    "key",
    "auth",
    "sig",
    "sign",  # Wowza's wmsAuthSign
    "signature",
    "password",
    "passwd",
    "pass",
    "pwd",
    "passphrase",  # SRT's encryption key
    "secret",
    "session",
    "credential",
    "credentials",
)
# Up to the last "@" before the path, as ffmpeg splits it: a password may hold a raw "@".
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s?#]*@", re.IGNORECASE)
_QUERY_SECRET = re.compile(
    # The value ends at the next parameter or a space; a ":" right before a space or the end is
    # the message's own ("...?token=abc: Connection refused"), not the secret's.
    r"(?P<lead>[?&;#])(?P<key>[^=&;#\s/?]*?(?:"
    + "|".join(SECRET_KEYS)
    + r"))=[^&;#\s]*?(?=:?(?:[&;#\s]|$))",
    re.IGNORECASE,
)


def is_url(spec: str) -> bool:
    return spec.lower().startswith(URL_PREFIXES)


def looks_like_url(spec: str) -> bool:
    """`scheme://…`, whether or not a feed is read over that scheme (ftp://, a typo)."""
    return _SCHEME.match(spec) is not None


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower()


def for_ffmpeg(url: str) -> str:
    """`url` with its scheme in lower case: schemes are case-insensitive (RFC 3986), but ffmpeg
    looks protocols up by their exact name and reads `HTTP://…` as a file name. The rest (host,
    path, credentials) is passed as written."""
    scheme, sep, rest = url.partition("://")
    return scheme.lower() + sep + rest


def protocol_whitelist(url: str) -> str:
    """The -protocol_whitelist value for a URL (see PROTOCOLS_BY_SCHEME)."""
    return PROTOCOLS_BY_SCHEME.get(scheme_of(url), scheme_of(url))


def redact(text: str) -> str:
    """`text` with every URL's user:password@ and secret query values replaced by ***.

    Works on any text (an ffmpeg message, an error) as well as on a bare URL; idempotent."""
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('lead')}{m.group('key')}={REDACTED}", text)
