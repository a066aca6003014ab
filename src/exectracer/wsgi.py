"""``exectracer.wsgi.TraceMiddleware``: the debug endpoints for any WSGI application."""

from .integrations.wsgi import TraceMiddleware

__all__ = ["TraceMiddleware"]
