"""One error hierarchy: every expected failure is a WtnasError whose message is one line that
names the bad value and says how to fix it. The CLI prints it and exits 1."""


class WtnasError(Exception):
    """Base of every error a user can cause and fix."""


class PluginError(WtnasError):
    """Unknown, duplicate, broken or unavailable plugin component."""


class ConfigError(WtnasError):
    """Bad configuration file or option value."""


class ArchSeqError(WtnasError):
    """An architecture sequence that does not fit its search space."""


class InvalidArchitecture(WtnasError):
    """A valid arch_seq whose layers do not fit together (e.g. pooling larger than its input)."""


class CheckpointError(WtnasError):
    """A file that is not a readable wtnas checkpoint, or whose tensors do not fit."""


class RunDirError(WtnasError):
    """A run directory that cannot be used as asked (exists already, missing, not a run)."""


class StorageFullError(WtnasError):
    """The disk (or quota) holding the run is full; the run stops consistently and can resume."""


class RunFailedError(WtnasError):
    """A run whose first candidates all failed with one error: a configuration that cannot work."""


class NonFiniteModel(WtnasError):
    """A candidate whose loss, predictions, objective, metrics or weights are NaN or infinite: it
    fails (no checkpoint, never a provider) whatever score its objective would compute."""
