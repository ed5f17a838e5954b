"""The plugin system: the hook specifications, the `Option`s a component declares, the registry
of components and the pluggy manager that fills it from the `wtnas` entry points."""
