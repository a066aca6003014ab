"""``exectracer.asgi.TraceMiddleware``: the debug endpoints for any ASGI application."""

from .integrations.asgi import TraceMiddleware

__all__ = ["TraceMiddleware"]
