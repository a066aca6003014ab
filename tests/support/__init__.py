"""What the tests share: modules they import, never tests themselves (pytest collects only ``test_*.py``).

* ``recorded``: a loaded trace with helpers for assertions (the ``record`` fixture's result);
* ``tracebuilder`` and ``model_trace``: trace files built event by event, with known answers;
* ``waiting``: waiting for a condition with a deadline, instead of sleeping a fixed time;
* ``cpu``: how long this process's threads waited for a CPU, what a busy machine adds to any delay;
* ``live``: an HTTP client, a steady load and example servers for the live capture tests;
* ``viewer_browser``: the viewer server and headless Chromium for the browser tests, also a script
  (``python tests/support/viewer_browser.py --screenshot docs/images/timeline.png``).

The programs the tests run in their own interpreters are in ``tests/programs``.
"""
