"""pybuild's commands, one module per group of verbs (`pybuild.cli` holds the table of names)."""
