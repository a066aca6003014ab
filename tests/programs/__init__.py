"""Programs the tests run in a fresh interpreter (``python tests/programs/NAME.py`` or ``exectracer run``).

Each is a script first: it imports nothing from the tests. A test may also import one for its functions.
"""
