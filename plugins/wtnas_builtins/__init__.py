"""wtnas' built-in components. Each module is a plugin of its own, registered through the
`wtnas` entry-point group exactly as a third-party package would be."""
