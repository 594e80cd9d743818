"""Allow ``python -m billing`` as an alias of the ``billing`` console script."""

from billing.cli.app import main

raise SystemExit(main())
