"""Allow ``python -m storage_emulator``."""

from .cli import main

raise SystemExit(main())
