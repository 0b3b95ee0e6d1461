"""Storage URLs: refused when they would lose a study, and never printed with a password."""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_plus

# SQLAlchemy takes a password unencoded, with any character but '@' ('?', '#', spaces and
# quotes included; its user name is anything but ':' and '/'), and a query value up to the
# next '&'. So a password in text runs to the last '@' of its line and a query password to
# the next '&' or the line's end: masking too much is harmless, too little is a leak.
_USERINFO_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\n]*):[^\n]*@")
_QUERY_PASSWORD = re.compile(r"(?i)\b((?:ssl)?password|passwd|pwd)=[^&\n]*")


def mask_password(text: str) -> str:
    """A storage URL, or a message quoting one, with every password replaced by ``***``:
    the userinfo's (up to the last ``@`` of its line, so a raw ``@``, ``?``, ``#``, space
    or quote in it leaks nothing) and ``password=`` settings in a query or a connection
    string (up to the next ``&``).

    Example:
        >>> mask_password("postgresql://user:secret@db:5432/optuna")
        'postgresql://user:***@db:5432/optuna'
        >>> mask_password("postgresql://u:p@ss@db/optuna?sslmode=require&password=x")
        'postgresql://u:***@db/optuna?sslmode=require&password=***'
        >>> mask_password("postgresql://u:a?b#c'd e@db/optuna")
        'postgresql://u:***@db/optuna'
    """
    return _QUERY_PASSWORD.sub(r"\1=***", _USERINFO_PASSWORD.sub(r"\1:***@", text))


def secrets_of(url: str) -> list[str]:
    """The passwords a URL carries, raw and decoded (to mask them in messages): as our
    patterns find them and as SQLAlchemy reads them.

    Example:
        >>> secrets_of("postgresql://u:p%40ss@h/db")
        ['p%40ss', 'p@ss']
    """
    found = [m.group(0)[len(m.group(1)) + 1 : -1] for m in _USERINFO_PASSWORD.finditer(url)]
    found += [m.group(0).split("=", 1)[1] for m in _QUERY_PASSWORD.finditer(url)]
    found += [unquote(s) for s in found] + [unquote_plus(s) for s in found]
    try:
        from sqlalchemy.engine import make_url  # Optuna's dependency, slow to import

        parsed = make_url(url)
        found += [str(parsed.password or "")]
        found += [str(v) for k, v in parsed.query.items() if _QUERY_PASSWORD.match(f"{k}=")]
    except Exception:  # not a URL SQLAlchemy reads: nothing more to find
        pass
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def hide_secrets(message: str, url: str) -> str:
    """``message`` with every password of ``url`` (raw or decoded) replaced by ``***``.

    Example:
        >>> hide_secrets("auth failed for s3cret", "postgresql://u:s3cret@h/db")
        'auth failed for ***'
    """
    for secret in secrets_of(url):
        message = message.replace(secret, "***")
    return mask_password(message)


def proxy_address(url: str) -> tuple[str, int] | None:
    """The host and port of a storage proxy's URL, ``grpc://HOST:PORT``; None for any other
    URL.

    Raises:
        ValueError: One line, if a ``grpc://`` URL is not a host and a port (1 to 65535).

    Example:
        >>> proxy_address("grpc://127.0.0.1:13000"), proxy_address("sqlite:///x.db")
        (('127.0.0.1', 13000), None)
        >>> proxy_address("grpc://proxy:http")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: storage 'grpc://proxy:http' is not a storage proxy's address: ...
    """
    if not url.startswith("grpc://"):
        return None
    rest = url.removeprefix("grpc://").removesuffix("/")
    host, _, port = rest.rpartition(":")
    valid = host and not any(c in rest for c in "/?#@ ") and port.isascii() and port.isdigit()
    if not valid or not 1 <= int(port) <= 65535:
        raise ValueError(
            f"storage {mask_password(url)!r} is not a storage proxy's address: give "
            "grpc://HOST:PORT with a port from 1 to 65535, e.g. grpc://127.0.0.1:13000 "
            "(the proxy takes no user nor password)"
        )
    return host, int(port)


def check_storage_url(url: str) -> None:
    """Refuse, in one line, storage URLs that would lose the study or leak a password.

    Example:
        >>> check_storage_url("sqlite:///")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: storage 'sqlite:///' is an in-memory database: the study would be lost...
    """
    shown = mask_password(url)
    if proxy_address(url) is not None:
        return
    path = url.split("?", 1)[0]
    if path in ("sqlite:", "sqlite:/", "sqlite://", "sqlite:///") or path.endswith(":memory:"):
        raise ValueError(
            f"storage {shown!r} is an in-memory database: the study would be lost when this "
            "process ends; give a file, e.g. sqlite:///runs/NAME/study.db"
        )
    if "://" not in url:
        raise ValueError(
            f"storage {shown!r} is not a URL (sqlite:///FILE, journal:///FILE, "
            "postgresql://USER@HOST/DB or a storage proxy's grpc://HOST:PORT)"
        )
    network = not url.startswith(("sqlite:", "journal:"))  # file paths may hold an '@'
    if network and url.split("://", 1)[1].split("?", 1)[0].count("@") > 1:
        raise ValueError(
            f"storage {shown!r} has a raw '@' in its user name or password: "
            "percent-encode it as %40"
        )
