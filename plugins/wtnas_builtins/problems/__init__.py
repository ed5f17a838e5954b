"""Built-in problems, one plugin module each."""
