"""One module per ``xdet`` subcommand: argument parsing and what is printed; the work is elsewhere."""
