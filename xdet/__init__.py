"""The application: the ``xdet`` command line, run folders, sweep, demo, tables and analysis."""
