"""Programs the tests run in a fresh interpreter (``python tests/programs/NAME.py`` or ``exectracer run``).

Each is a script first: of the tests, it imports only their ``support`` package (putting ``tests/`` on
``sys.path`` itself). A test may also import one for its functions.
"""
