"""The search loop: the strategy and executor protocols, the scheduler, the jobs it builds, the
workers that evaluate them and the controls."""
