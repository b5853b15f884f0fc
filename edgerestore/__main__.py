"""``python -m edgerestore`` is the ``edgerestore`` command."""

from edgerestore.cli import main

if __name__ == "__main__":
    main()
