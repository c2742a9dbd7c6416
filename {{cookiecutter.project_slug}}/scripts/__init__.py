"""Chores run from the project root as `python -m scripts.<name>` (see the Makefile)."""
