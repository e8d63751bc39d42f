"""``python -m pop3watch`` runs the command line."""

from pop3watch.cli import main

main()
