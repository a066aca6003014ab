"""Run by every Python child process of ``exectracer run`` (this directory leads ``PYTHONPATH``).

It records the child (``exectracer.record.follow.start_child``), takes this
directory off ``sys.path`` and runs the ``sitecustomize`` the child would
have run without it, which then stands in ``sys.modules`` in this one's
place (without one, this module stays there). Nothing else of the child changes: ``sys.argv``, ``sys.path[0]`` and
``__main__`` are not touched. A child whose interpreter cannot import
exectracer runs untraced.
"""


def _follow() -> None:
    import importlib.machinery
    import importlib.util
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    ours = [i for i, entry in enumerate(sys.path) if entry and os.path.abspath(entry) == here]
    if ours:
        del sys.path[ours[-1]]
    try:
        from exectracer.record.follow import start_child
    except ImportError:  # another interpreter, without exectracer
        pass
    else:
        start_child()
    spec = importlib.machinery.PathFinder.find_spec(
        __name__, [p for p in sys.path if os.path.abspath(p or ".") != here]
    )
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[__name__] = module
    spec.loader.exec_module(module)


_follow()
