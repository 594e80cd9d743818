"""The ``billing`` command line: typer commands, rich tables for people, ``--json`` for scripts."""
