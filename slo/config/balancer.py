"""The `balancer:` section: nginx in front of the API, in the seed's shape (34.3.8).

balancer:
  target: balancer                  # https://claude-code.company.com (the TLS probe covers it)
  upstreams: [api-1, api-2, api-3]  # each API server as its own target, probed directly
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from slo.config.fields import StrictModel, Url

__all__ = ["BalancerProbe", "TlsVersion"]

TlsVersion = Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
_ACCEPTED: tuple[TlsVersion, ...] = ("TLSv1.2", "TLSv1.3")
_REFUSED: tuple[TlsVersion, ...] = ("TLSv1", "TLSv1.1")


class BalancerProbe(StrictModel):
    #: The balancer's https target.
    target: str = "balancer"
    #: Targets of the API servers behind it, each answering `health_path` directly.
    upstreams: list[str] = Field(default_factory=list)
    health_path: str = "/health"
    #: The plain-HTTP listener that redirects to https; default the balancer's host on port 80.
    http_url: Url | None = None
    #: The seed's ``ssl_protocols TLSv1.2 TLSv1.3``.
    tls_accepted: list[TlsVersion] = Field(default_factory=lambda: list(_ACCEPTED))
    tls_refused: list[TlsVersion] = Field(default_factory=lambda: list(_REFUSED))
