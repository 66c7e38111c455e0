"""The exit statuses of every command, in one place (a leaf: imports nothing)."""

EXIT_OK = 0  # every target ok; the command did what it was asked
EXIT_FAILED = 1  # some probe failed (check), or the data source failed (report, status)
EXIT_USAGE = 2  # bad usage or bad input: one line, no traceback
EXIT_LOCAL = 3  # nothing failed, but some probe could not be carried out on this host
