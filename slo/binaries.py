"""Finding the Debian binaries the product runs (`promtool`), with the package to install.

`slo rules --check` needs promtool; the development daemons (devstack) find theirs the same way.
"""

from __future__ import annotations

import shutil

__all__ = ["DEBIAN_PACKAGES", "BinaryNotFoundError", "find_binary"]

#: The Debian package that ships each binary, for the "install it" hint.
DEBIAN_PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-pushgateway": "prometheus-pushgateway",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
}


class BinaryNotFoundError(RuntimeError):
    """The binary is not on PATH; the message names the Debian package that ships it."""


def find_binary(name: str) -> str:
    """Absolute path of `name` on PATH, or a :class:`BinaryNotFoundError` naming its package."""
    path = shutil.which(name)
    if path is None:
        package = DEBIAN_PACKAGES.get(name, name)
        raise BinaryNotFoundError(
            f"{name} not found on PATH: install the Debian package {package} "
            f"(sudo apt-get install {package}, or `make system-deps`)"
        )
    return path
