"""``python -m oneloop`` is the ``oneloop`` command."""

from oneloop.cli.main import main

main()
