"""`python -m ftkit.cli` (the launcher starts each rank this way)."""

from ftkit.cli.entry import main

main()
