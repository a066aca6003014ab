"""``python -m exectracer``: the same as the ``exectracer`` command."""

from .cli import main

if __name__ == "__main__":
    main()
