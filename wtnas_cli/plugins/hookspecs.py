"""The hook specifications every wtnas plugin implements (see docs/plugin-hooks.md).

Registration hooks receive a `register` callable bound to one kind of component:
    register(name, factory, *, requires=(), install_hint="", description="", traits=None, options=())
`traits` are hints for the rest of wtnas: a backend's {"max_jobs_per_worker": N} makes executors
replace a worker process after N candidates (frameworks that leak memory); {"baseline": True} marks
a matcher or selector that never transfers; a selector's {"needs_parent": True} and a strategy's
{"proposes_parents": bool, "random_start": "<its option>", "random_start_bounds": ("<option>", ...),
"default_selector": "<selector>"} let wtnas pick a selector, fit the random start to a small budget
and refuse or warn about schemes that can never transfer (wtnas_cli/run/scheme.py); {"chosen_by":
"--space FILE"} marks a component a user picks with that flag, not by name (errors list the flag).
A dict passed as `options=` is the old spelling of `traits`, still accepted.
`options` are what a user may set: a sequence of `wtnas_cli.contracts.Option(name, type, default,
help)`; the factory receives each as a keyword argument (the default when the user sets nothing),
users set them with `wtnas run -o NAME.OPTION=VALUE` or `[options.NAME]` in a config file, and
`wtnas plugins --options` lists them (docs/writing-plugins.md, "Options your component takes").
`factory` is called only when the component is used, so a plugin module stays import-light and
its heavy dependencies (named in `requires`) are imported inside the factory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:   # annotations only: importing this module stays as light as pluggy
    from pathlib import Path

    import typer

    from .registry import Register

PROJECT = "wtnas"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def wtnas_register_backends(register: Register) -> None:
    """Register deep-learning backends (build, train, evaluate models; get/set canonical tensors).

    :param register: ``register(name, factory, ...)``; ``factory(**options)`` returns a Backend
        (``options``: its declared options, if any).

    Example::

        @hookimpl
        def wtnas_register_backends(register: Register) -> None:
            register("jax", lambda: JaxBackend(), requires=("jax",), install_hint="pip install wtnas-jax")
    """


@hookspec
def wtnas_register_strategies(register: Register) -> None:
    """Register search strategies (ask/tell).

    :param register: ``register(name, factory, ...)``; ``factory(space, seed, **options)`` returns a Strategy
        (``options``: the strategy's declared options).

    Example::

        @hookimpl
        def wtnas_register_strategies(register: Register) -> None:
            register("local-search", LocalSearch, description="mutate the best candidate so far")
    """


@hookspec
def wtnas_register_selectors(register: Register) -> None:
    """Register provider selectors (which checkpoint a new candidate starts from).

    :param register: ``register(name, factory, ...)``; ``factory(space, **options)`` returns a Selector.

    Example (the `best-nearby` selector of plugins/wtnas-example)::

        @hookimpl
        def wtnas_register_selectors(register: Register) -> None:
            register("best-nearby", BestNearbySelector)
    """


@hookspec
def wtnas_register_matchers(register: Register) -> None:
    """Register tensor matchers: which provider tensor seeds which receiver tensor.

    :param register: ``register(name, factory, ...)``; ``factory(**options)`` returns a callable
        ``match(provider, receiver) -> [(provider_index, receiver_index), ...]`` (any iterable).

    By default a matcher receives the two **shape sequences** (lists of tuples), as in the paper;
    matchers written that way keep working unchanged. Decorate it with
    ``wtnas_cli.contracts.takes_specs`` and it receives the two lists of ``TensorSpec`` instead
    (``layer``, ``op``, ``role``, ``shape``, ``trainable``), so it can compare roles;
    ``role_class(spec.role)`` gives the classes the built-in matchers respect.
    ``@takes_specs(partial=True)`` may also pair tensors of the same rank but different sizes: the
    evaluator then copies their overlapping block. Every pair is checked before anything is
    copied (indices inside both sequences, each receiver tensor once, equal shapes or, for a
    partial matcher, equal ranks); a bad pair makes the candidate train from scratch and is
    recorded as an event. ``traits={"baseline": True}`` marks a matcher that transfers nothing.

    Example::

        from wtnas_cli.contracts import role_class, takes_specs

        @takes_specs
        def first_kernel(provider, receiver):
            same = provider and receiver and provider[0].shape == receiver[0].shape
            return [(0, 0)] if same and role_class(provider[0].role) == role_class(receiver[0].role) else []

        @hookimpl
        def wtnas_register_matchers(register: Register) -> None:
            register("first-kernel", lambda: first_kernel, description="the first kernel only")
    """


@hookspec
def wtnas_register_executors(register: Register) -> None:
    """Register executors that run evaluation jobs on workers.

    :param register: ``register(name, factory, ...)``; ``factory(workers=..., threads_per_worker=...,
        devices=..., max_jobs_per_worker=..., **options)`` returns an ``wtnas_cli.contracts.Executor``
        (``options``: the executor's declared options, e.g. a scheduler address; take what you use,
        ignore the rest with ``**_``). The contract is in ``wtnas_cli/search/executor_protocol.py``; check yours
        with ``wtnas_cli.testing.check_executor``.

    Example::

        @hookimpl
        def wtnas_register_executors(register: Register) -> None:
            register("dask", lambda **kw: DaskExecutor(**kw), requires=("distributed",),
                     options=[Option("address", str, None, "scheduler address")])
    """


@hookspec
def wtnas_register_problems(register: Register) -> None:
    """Register problems: a search space, its data and its objective.

    :param register: ``register(name, factory, ...)``; ``factory(space=..., data=..., data_dir=...,
        **options)`` returns a Problem (paths the user gave, absolute; ``options``: the problem's
        declared options, e.g. ``synthetic``).

    Example (the `spirals` problem of plugins/wtnas-example)::

        @hookimpl
        def wtnas_register_problems(register: Register) -> None:
            register("spirals", spirals_problem, description="two interleaved spirals")
    """


@hookspec
def wtnas_register_export_formats(register: Register) -> None:
    """Register model file formats for ``wtnas export`` (standalone files that load without wtnas).

    :param register: ``register(name, factory, ...)``; ``factory()`` returns an Exporter
        (``wtnas_cli/model/backend_protocol.py``): ``backend`` (the backend that builds the model to export),
        ``suffix`` (e.g. ``".pt2"``), ``layout`` (one line on the inputs the file expects),
        ``export(model, path, inputs)`` (write the built, checkpoint-loaded model to ``path``;
        ``inputs`` are a few example input arrays) and ``predict(path, inputs)`` (load the file as a
        user would and predict, so ``wtnas export`` can check the file against ``model.predict``).

    Example::

        @hookimpl
        def wtnas_register_export_formats(register: Register) -> None:
            register("tflite", TfliteExporter, requires=("tensorflow",),
                     install_hint="pip install 'wtnas[keras-tensorflow]'", description="TensorFlow Lite")
    """


@hookspec
def wtnas_add_commands(app: typer.Typer) -> None:
    """Add commands to the ``wtnas`` Typer application.

    :param app: the root ``typer.Typer`` instance.

    Example::

        @hookimpl
        def wtnas_add_commands(app: typer.Typer) -> None:
            @app.command("hello")
            def hello(name: str = "world"):
                print(f"hello {name}")
    """


@hookspec
def wtnas_candidate_evaluated(run_dir: Path, record: dict[str, Any]) -> None:
    """Called in the scheduler after each candidate finished (ok or failed), once it is stored.

    :param run_dir: the run directory (``pathlib.Path``).
    :param record: dict with the candidate's stored fields (id, arch_seq, score, status, timings, ...).

    Example (stream results to a tracker)::

        @hookimpl
        def wtnas_candidate_evaluated(run_dir: Path, record: dict[str, Any]) -> None:
            if record["status"] == "ok":
                tracker.log(step=record["id"], score=record["score"])
    """


@hookspec
def wtnas_run_finished(run_dir: Path, summary: dict[str, Any]) -> None:
    """Called once when ``wtnas run`` ends (budget reached or interrupted).

    :param run_dir: the run directory (``pathlib.Path``).
    :param summary: dict with ``ok``, ``failed`` and ``with_transfer`` (counts), ``best_score``,
        ``elapsed_s``, ``interrupted`` (bool), ``controls`` (count), ``inheritance_lift`` and
        ``warm_scratch_tau`` (see ``wtnas run --controls``).

    Notification hooks (this one, ``wtnas_candidate_evaluated`` and ``wtnas_topk_finished``) are
    called plugin by plugin; one that raises is reported once and skipped, and the search goes on.

    Example::

        @hookimpl
        def wtnas_run_finished(run_dir: Path, summary: dict[str, Any]) -> None:
            notify(f"{run_dir}: best {summary['best_score']}")
    """


@hookspec
def wtnas_topk_finished(run_dir: Path, summary: dict[str, Any], models: list[dict[str, Any]]) -> None:
    """Called once when ``wtnas topk`` (or ``api.topk``) has trained the top-K, also when it was
    interrupted (then some models are missing); like every notification hook, one that raises is
    reported once and skipped.

    :param run_dir: the run directory (``pathlib.Path``).
    :param summary: dict with ``mode`` (``"warm"`` or ``"scratch"``), ``settings`` (the training
        settings key), ``k``, ``selected``, ``trained_now``, ``reused``, ``failed`` (counts) and
        ``interrupted`` (bool).
    :param models: one dict per model selected with these settings (the run store's ``trained``
        rows, best estimated score first): ``candidate_id``, ``status``, ``in_topk``,
        ``in_tau_sample``, ``estimated_score``, ``objective_at_stop``, ``objective_final``,
        ``epochs_trained``, ``epochs_to_converge``, ``converged``, ``curve`` (objective per epoch),
        ``start_score`` (the objective before the first epoch, with ``reference=start`` settings),
        ``num_params``, ``train_s``, ``wall_s``, ``checkpoint`` (the trained model's ``.h5`` file).

    Example (keep the trained top-K models with a tracker, as plugins/wtnas-mlflow does)::

        @hookimpl
        def wtnas_topk_finished(run_dir: Path, summary: dict[str, Any], models: list[dict[str, Any]]) -> None:
            for m in models:
                if m["in_topk"] and m["status"] == "ok":
                    tracker.log_artifact(m["checkpoint"], step=m["candidate_id"])
    """
