"""A run on disk: its settings and how they resolve against the plugins, its directory, lease,
store, candidate definition and checkpoint retention."""
