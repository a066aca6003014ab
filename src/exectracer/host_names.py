"""Which ``Host`` headers a server of ours answers: the defence against DNS rebinding.

A page on another site can have its own name resolve to 127.0.0.1 and then
read from a server on loopback as if it were that site. Its requests carry
the attacker's name in ``Host``. A server that answers only IP addresses,
``localhost`` (and names under it) and the names it was told about cannot
be read that way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def host_name(header: str) -> str:
    """The name or address of a ``Host`` header, lower case, without port, brackets or trailing dot."""
    name = header.strip().lower()
    if name.startswith("["):  # [IPv6]:port
        return name[1 : name.find("]")] if "]" in name else ""
    if name.count(":") == 1:
        name = name.partition(":")[0]
    return name.rstrip(".")


def names(given: Iterable[str]) -> frozenset[str]:
    """Host names as :func:`accepts_host` compares them."""
    return frozenset(host_name(name) for name in given)


def accepts_host(header: str, allowed: frozenset[str] = frozenset()) -> bool:
    """Whether a request with this ``Host`` may be answered: an IP address, ``localhost`` or a name
    under it, or one of ``allowed`` (see :func:`names`)."""
    name = host_name(header)
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name == "localhost" or name.endswith(".localhost") or name in allowed
    return True
