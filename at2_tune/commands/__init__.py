"""Subcommands of the ``at2-tune`` CLI; each module has ``add_parser(subparsers)``."""
