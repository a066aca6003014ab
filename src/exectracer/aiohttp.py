"""``exectracer.aiohttp.add_debug_routes``: the debug endpoints for an aiohttp application (imports aiohttp)."""

from .integrations.aiohttp import add_debug_routes

__all__ = ["add_debug_routes"]
