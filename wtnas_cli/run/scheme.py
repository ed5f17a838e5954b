"""A run's transfer scheme: strategy, selector and matcher together.

Before a run, combinations that can never transfer are refused and budgets that leave little
room for transfer are warned about, so a run is never labelled a transfer scheme in which no
candidate could receive weights. After a run, `label` says what actually happened.

Components describe themselves through registration traits (no plugin is named here):
- matcher/selector ``{"baseline": True}``: transfers nothing / never picks a provider;
- selector ``{"needs_parent": True}``: picks the parent a strategy proposes, nothing else;
- strategy ``{"proposes_parents": bool}``; ``{"random_start": "population"}``: the first N
  candidates (N = that option of the strategy) are random samples without a parent, and when the
  user leaves N unset it follows a small budget (`fit_random_start`); ``{"random_start_bounds":
  ("sample", ...)}``: its options that may not exceed N, scaled with it when unset;
  ``{"default_selector": "parent"}``: the selector `--selector auto` means with it.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..plugins.registry import Registry
from .config import RunConfig


def is_baseline(reg: Registry, kind: str, name: str) -> bool:
    return bool(reg.get(kind, name).traits.get("baseline"))


def baseline_component(reg: Registry, kind: str) -> str:
    """The registered component of a kind that marks the no-transfer baseline (trait baseline)."""
    names = [c.name for c in reg.all(kind) if c.traits.get("baseline")]
    if not names:
        raise ConfigError(f"no {kind} is registered as the no-transfer baseline (traits={{'baseline': True}}); "
                          f"install or load the plugin that provides one, or pass --{kind}")
    return sorted(names)[0]


def run_selector(cfg: RunConfig, reg: Registry) -> str:
    """The selector a run uses: --selector, or for `auto` the strategy's `default_selector` trait
    (a strategy without one needs --selector), or the baseline selector when the matcher
    transfers nothing."""
    if cfg.selector != "auto":
        return cfg.selector
    if is_baseline(reg, "matcher", cfg.matcher):
        return baseline_component(reg, "selector")
    strategy = reg.get("strategy", cfg.strategy)
    # a factory attribute was the old spelling of the trait (lost behind a lazy factory)
    default = strategy.traits.get("default_selector") or getattr(strategy.factory, "default_selector", None)
    if not default:
        raise ConfigError(f"--selector auto: strategy {cfg.strategy!r} (plugin {strategy.plugin!r}) names no default "
                          f"selector (registration trait default_selector); pass --selector, one of: "
                          f"{', '.join(reg.names('selector'))}")
    return str(default)


SMALLEST_RANDOM_START = 4   # below this a population is too small to select in


def fit_random_start(cfg: RunConfig, reg: Registry) -> dict[str, int]:
    """A strategy whose first N candidates are random (trait random_start) gets, when the user set
    no N, N = min(default, max(4, max_evals // 5)): a 20-candidate first try transfers to 16
    candidates instead of none. Options bounded by N (trait random_start_bounds) that the user did
    not set shrink in proportion; those set raise N to them (never above the default). New runs only: a resumed run's
    options are all set. Returns the options changed ({} when none), stored with the run."""
    component = reg.get("strategy", cfg.strategy)
    option = component.traits.get("random_start")
    given = cfg.options_of("strategy", cfg.strategy)
    defaults = {o.name: o.default for o in component.options}
    if not option or option in given or not isinstance(defaults.get(option), int):
        return {}
    bounds = [b for b in component.traits.get("random_start_bounds", ()) if isinstance(defaults.get(b), int)]
    start = min(defaults[option], max([SMALLEST_RANDOM_START, cfg.max_evals // 5]
                                      + [given[b] for b in bounds if isinstance(given.get(b), int)]))
    if start == defaults[option]:
        return {}
    changed = {option: start}
    for b in bounds:
        value = max(1, min(start, round(defaults[b] * start / defaults[option])))
        if b not in given and value != defaults[b]:
            changed[b] = value
    cfg.options[cfg.strategy] = {**cfg.options.get(cfg.strategy, {}), **changed}
    return changed


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
    strategy = reg.get("strategy", cfg.strategy).traits
    if reg.get("selector", selector).traits.get("needs_parent"):
        if strategy.get("proposes_parents") is False:
            raise ConfigError(f"--selector {selector} uses the parent a strategy proposes, and --strategy "
                              f"{cfg.strategy} proposes none, so no candidate would receive weights: use "
                              f"--selector nearest (or --strategy evolution)")
        option = strategy.get("random_start")
        start = cfg.options_of("strategy", cfg.strategy).get(option) if option else None
        flag = f"-o {cfg.strategy}.{option}"
        if isinstance(start, int) and start >= cfg.max_evals:
            return [f"the first {start} candidates ({flag}) of {cfg.strategy} are random samples without a "
                    f"parent, so none of --max-evals {cfg.max_evals} can receive weights from selector "
                    f"{selector}: raise --max-evals above {start}, lower {flag}, or use --selector nearest"]
        if isinstance(start, int) and start * 2 > cfg.max_evals:
            return [f"only the last {cfg.max_evals - start} of {cfg.max_evals} candidates can receive weights: the "
                    f"first {start} ({flag}) are random samples without a parent"]
    return []


def label(matcher: str | None, selector: str | None, warm: int, ok: int, baseline: bool) -> str:
    """What a run did: 'baseline', or matcher · selector · share of candidates that got weights."""
    if baseline:
        return "baseline"
    share = f"{warm / ok:.0%} warm" if warm else "no transfer happened"
    return f"{matcher} · {selector or 'auto'} · {share}"
