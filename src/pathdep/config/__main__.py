from pathdep.config.validation import main

raise SystemExit(main())
