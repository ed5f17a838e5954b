"""The hook specifications every wtnas plugin implements (see docs/plugin-hooks.md).

Registration hooks receive a `register` callable bound to one kind of component:
    register(name, factory, *, requires=(), install_hint="", description="", options=None)
`options` are hints for the rest of wtnas: a backend's {"max_jobs_per_worker": N} makes executors
replace a worker process after N candidates (frameworks that leak memory); {"baseline": True} marks
a matcher or selector that never transfers; a selector's {"needs_parent": True} and a strategy's
{"proposes_parents": bool, "random_start": "<run option>"} let wtnas refuse or warn about schemes
that can never transfer (see wtnas_cli/scheme.py).
`factory` is called only when the component is used, so a plugin module stays import-light and
its heavy dependencies (named in `requires`) are imported inside the factory.
"""

from __future__ import annotations

import pluggy

PROJECT = "wtnas"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def wtnas_register_backends(register):
    """Register deep-learning backends (build, train, evaluate models; get/set canonical tensors).

    :param register: ``register(name, factory, ...)``; ``factory()`` returns a Backend.

    Example::

        @hookimpl
        def wtnas_register_backends(register):
            register("jax", lambda: JaxBackend(), requires=("jax",), install_hint="pip install wtnas-jax")
    """


@hookspec
def wtnas_register_strategies(register):
    """Register search strategies (ask/tell).

    :param register: ``register(name, factory, ...)``; ``factory(space, seed, **options)`` returns a Strategy.

    Example::

        @hookimpl
        def wtnas_register_strategies(register):
            register("local-search", LocalSearch, description="mutate the best candidate so far")
    """


@hookspec
def wtnas_register_selectors(register):
    """Register provider selectors (which checkpoint a new candidate starts from).

    :param register: ``register(name, factory, ...)``; ``factory(space)`` returns a Selector.

    Example (the `best-nearby` selector of plugins/wtnas-example)::

        @hookimpl
        def wtnas_register_selectors(register):
            register("best-nearby", BestNearbySelector)
    """


@hookspec
def wtnas_register_matchers(register):
    """Register tensor matchers: which provider tensor seeds which receiver tensor.

    :param register: ``register(name, factory, ...)``; ``factory()`` returns a callable
        ``match(provider, receiver) -> [(provider_index, receiver_index), ...]`` (any iterable).

    By default a matcher receives the two **shape sequences** (lists of tuples), as in the paper;
    matchers written that way keep working unchanged. Decorate it with
    ``wtnas_cli.matching.takes_specs`` and it receives the two lists of ``TensorSpec`` instead
    (``layer``, ``op``, ``role``, ``shape``, ``trainable``), so it can compare roles;
    ``role_class(spec.role)`` gives the classes the built-in matchers respect.
    ``@takes_specs(partial=True)`` may also pair tensors of the same rank but different sizes: the
    evaluator then copies their overlapping block. Every pair is checked before anything is
    copied (indices inside both sequences, each receiver tensor once, equal shapes or, for a
    partial matcher, equal ranks); a bad pair makes the candidate train from scratch and is
    recorded as an event. ``options={"baseline": True}`` marks a matcher that transfers nothing.

    Example::

        from wtnas_cli.matching import role_class, takes_specs

        @takes_specs
        def first_kernel(provider, receiver):
            same = provider and receiver and provider[0].shape == receiver[0].shape
            return [(0, 0)] if same and role_class(provider[0].role) == role_class(receiver[0].role) else []

        @hookimpl
        def wtnas_register_matchers(register):
            register("first-kernel", lambda: first_kernel, description="the first kernel only")
    """


@hookspec
def wtnas_register_executors(register):
    """Register executors that run evaluation jobs on workers.

    :param register: ``register(name, factory, ...)``; ``factory(workers=..., threads_per_worker=...,
        devices=..., max_jobs_per_worker=..., gpus_per_worker=..., ray_address=..., **more)`` returns an
        ``wtnas_cli.executor.Executor`` (take the options you use, ignore the rest with ``**_``). The
        contract is in ``wtnas_cli/executor.py``; check yours with ``wtnas_cli.testing.check_executor``.

    Example::

        @hookimpl
        def wtnas_register_executors(register):
            register("dask", lambda **options: DaskExecutor(**options), requires=("distributed",))
    """


@hookspec
def wtnas_register_problems(register):
    """Register problems: a search space, its data and its objective.

    :param register: ``register(name, factory, ...)``; ``factory()`` returns a Problem.

    Example (the `spirals` problem of plugins/wtnas-example)::

        @hookimpl
        def wtnas_register_problems(register):
            register("spirals", spirals_problem, description="two interleaved spirals")
    """


@hookspec
def wtnas_register_export_formats(register):
    """Register model file formats for ``wtnas export`` (standalone files that load without wtnas).

    :param register: ``register(name, factory, ...)``; ``factory()`` returns an Exporter
        (``wtnas_cli/backend.py``): ``backend`` (the backend that builds the model to export),
        ``suffix`` (e.g. ``".pt2"``), ``layout`` (one line on the inputs the file expects),
        ``export(model, path, inputs)`` (write the built, checkpoint-loaded model to ``path``;
        ``inputs`` are a few example input arrays) and ``predict(path, inputs)`` (load the file as a
        user would and predict, so ``wtnas export`` can check the file against ``model.predict``).

    Example::

        @hookimpl
        def wtnas_register_export_formats(register):
            register("tflite", TfliteExporter, requires=("tensorflow",),
                     install_hint="pip install 'wtnas[keras-tensorflow]'", description="TensorFlow Lite")
    """


@hookspec
def wtnas_add_commands(app):
    """Add commands to the ``wtnas`` Typer application.

    :param app: the root ``typer.Typer`` instance.

    Example::

        @hookimpl
        def wtnas_add_commands(app):
            @app.command("hello")
            def hello(name: str = "world"):
                print(f"hello {name}")
    """


@hookspec
def wtnas_candidate_evaluated(run_dir, record):
    """Called in the scheduler after each candidate finished (ok or failed), once it is stored.

    :param run_dir: the run directory (``pathlib.Path``).
    :param record: dict with the candidate's stored fields (id, arch_seq, score, status, timings, ...).

    Example (stream results to a tracker)::

        @hookimpl
        def wtnas_candidate_evaluated(run_dir, record):
            if record["status"] == "ok":
                tracker.log(step=record["id"], score=record["score"])
    """


@hookspec
def wtnas_run_finished(run_dir, summary):
    """Called once when ``wtnas run`` ends (budget reached or interrupted).

    :param run_dir: the run directory (``pathlib.Path``).
    :param summary: dict with ``ok``, ``failed`` and ``with_transfer`` (counts), ``best_score``,
        ``elapsed_s``, ``interrupted`` (bool), ``controls`` (count), ``inheritance_lift`` and
        ``warm_scratch_tau`` (see ``wtnas run --controls``).

    Notification hooks (this one and ``wtnas_candidate_evaluated``) are called plugin by plugin;
    one that raises is reported once and skipped, and the search goes on.

    Example::

        @hookimpl
        def wtnas_run_finished(run_dir, summary):
            notify(f"{run_dir}: best {summary['best_score']}")
    """
