"""`python -m bot` is the same as the `tradewind` command."""

from bot.cli import main

raise SystemExit(main())
