"""synthgate: the compliance gateway for generative-AI ("deep synthesis") services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Gateway", "__version__"]

if TYPE_CHECKING:
    from synthgate.gateway.sdk import Gateway


def __getattr__(name: str) -> Any:
    # Importing the package stays cheap (CLI start-up); the SDK loads on first use.
    if name == "Gateway":
        from synthgate.gateway.sdk import Gateway

        return Gateway
    raise AttributeError(name)
