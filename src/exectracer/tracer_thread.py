"""The tracer's own threads: a recording leaves them out.

The recorder, the live endpoints and the analysis all start threads of
their own; making them :class:`TracerThread` keeps them out of any trace
recorded in the same process. This module depends on nothing of
exectracer, so every side can import it.
"""

from __future__ import annotations

import threading

__all__ = ["TracerThread"]


class TracerThread(threading.Thread):
    """A thread of the tracer itself (a debug server's, a snapshot writer's, an analysis helper): never recorded."""
