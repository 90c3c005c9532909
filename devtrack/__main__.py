"""Entry point for ``python -m devtrack``."""

from devtrack.cli import main

if __name__ == "__main__":
    main()
