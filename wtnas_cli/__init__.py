"""wtnas: neural architecture search with selective weight transfer (LP / LCS)."""

__version__ = "0.1.0"
