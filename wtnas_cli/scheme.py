"""A run's transfer scheme: strategy, selector and matcher together.

Before a run, combinations that can never transfer are refused and budgets that leave little
room for transfer are warned about, so a run is never labelled a transfer scheme in which no
candidate could receive weights. After a run, `label` says what actually happened.

Components describe themselves through registration options (no plugin is named here):
- matcher/selector ``{"baseline": True}``: transfers nothing / never picks a provider;
- selector ``{"needs_parent": True}``: picks the parent a strategy proposes, nothing else;
- strategy ``{"proposes_parents": bool}``; ``{"random_start": "population"}``: the first N
  candidates (N = that run option) are random samples without a parent.
"""

from __future__ import annotations

from .config import RunConfig
from .errors import ConfigError
from .registry import Registry


def is_baseline(reg: Registry, kind: str, name: str) -> bool:
    return bool(reg.get(kind, name).options.get("baseline"))


def baseline_component(reg: Registry, kind: str) -> str:
    """The registered component of a kind that marks the no-transfer baseline (options baseline)."""
    names = [c.name for c in reg.all(kind) if c.options.get("baseline")]
    if not names:
        raise ConfigError(f"no {kind} is registered as the no-transfer baseline (options={{'baseline': True}}); "
                          f"install or load the plugin that provides one, or pass --{kind}")
    return sorted(names)[0]


def check_scheme(cfg: RunConfig, reg: Registry, selector: str) -> list[str]:
    """Raise ConfigError for a scheme that cannot transfer; return one-line warnings."""
    matcher_off, selector_off = is_baseline(reg, "matcher", cfg.matcher), is_baseline(reg, "selector", selector)
    if matcher_off and not selector_off and cfg.selector != "auto":
        raise ConfigError(f"--matcher {cfg.matcher} transfers nothing, so --selector {selector} would pick "
                          f"providers for nothing: drop --selector for the baseline, or choose a matcher (lcs, lp, ...)")
    if selector_off and not matcher_off:
        raise ConfigError(f"--selector {selector} never picks a provider, so --matcher {cfg.matcher} would never "
                          f"transfer: use --matcher none for the baseline, or a selector (parent, nearest)")
    if matcher_off:
        return []
    strategy = reg.get("strategy", cfg.strategy).options
    if reg.get("selector", selector).options.get("needs_parent"):
        if strategy.get("proposes_parents") is False:
            raise ConfigError(f"--selector {selector} uses the parent a strategy proposes, and --strategy "
                              f"{cfg.strategy} proposes none, so no candidate would receive weights: use "
                              f"--selector nearest (or --strategy evolution)")
        option = strategy.get("random_start")
        start = getattr(cfg, option, None) if option else None
        if isinstance(start, int) and start >= cfg.max_evals:
            return [f"the first {start} candidates (--{option}) of {cfg.strategy} are random samples without a "
                    f"parent, so none of --max-evals {cfg.max_evals} can receive weights from selector "
                    f"{selector}: raise --max-evals above {start}, lower --{option}, or use --selector nearest"]
        if isinstance(start, int) and start * 2 > cfg.max_evals:
            return [f"only the last {cfg.max_evals - start} of {cfg.max_evals} candidates can receive weights: the "
                    f"first {start} (--{option}) are random samples without a parent"]
    return []


def label(matcher: str | None, selector: str | None, warm: int, ok: int, baseline: bool) -> str:
    """What a run did: 'baseline', or matcher · selector · share of candidates that got weights."""
    if baseline:
        return "baseline"
    share = f"{warm / ok:.0%} warm" if warm else "no transfer happened"
    return f"{matcher} · {selector or 'auto'} · {share}"
