"""Small helpers with no wtnas concepts: statistics, Ctrl-C handling, GPU lists, message text."""
