"""User-defined problems: a search space in a TOML or YAML file plus data in .npz, HDF5 or CSV.

    wtnas run --space myspace.toml --data mydata.npz

Every field is checked before any training starts and every problem is one line naming the file,
the field and the fix. Nothing in the file is executed (TOML, or YAML through yaml.safe_load).
See docs/search-spaces.md for the format.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WtnasError
from ..util.text import did_you_mean
from . import normalize as N
from . import ops as O
from .data import TEST_FRACTION, split
from .problem import LOSSES, OBJECTIVES, Dataset, Problem, as_inputs
from .space import ConstantNode, Input, Node, SearchSpace, VariableNode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOP_KEYS = {"name", "description", "loss", "objective", "direction", "batch_size", "min_delta", "inputs", "nodes",
            "output", "data"}
DATA_KEYS = {"path", "x", "y", "features", "label", "val_fraction", "split_seed", "normalize", "test_fraction", "test", "classes"}


class SpaceFileError(WtnasError):
    pass


class _Ctx:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, message: str) -> SpaceFileError:
        return SpaceFileError(f"{self.path}: {where}: {message}")


def read_document(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpaceFileError(f"{path}: search-space file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceFileError(f"{path}: cannot read ({exc})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise SpaceFileError(f"{path}: YAML needs PyYAML (pip install pyyaml), or write the space in TOML") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpaceFileError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    elif path.suffix.lower() == ".toml":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SpaceFileError(f"{path}: not valid TOML ({exc})") from None
    else:
        raise SpaceFileError(f"{path}: unknown format {path.suffix!r}; name the file .toml, .yaml or .yml")
    if not isinstance(doc, dict):
        raise SpaceFileError(f"{path}: the top level must be a table/mapping with inputs and nodes")
    return doc


def _kind(annotation: str) -> str:
    if "float" in annotation:
        return "number"
    if "int" in annotation:
        return "integer"
    return "string"


def parse_op(spec: Any, ctx: _Ctx, where: str) -> O.Op:
    if not isinstance(spec, dict) or "op" not in spec:
        raise ctx.fail(where, "an op is a table like {op = \"Dense\", units = 32}")
    kind = spec["op"]
    if not isinstance(kind, str) or kind not in O.OPS:
        raise ctx.fail(where, f"unknown op {kind!r}; choose one of {', '.join(O.OPS)}")
    cls = O.OPS[kind]
    params = {f.name: f for f in fields(cls)}
    args = {}
    for key, value in spec.items():
        if key == "op":
            continue
        if key not in params:
            valid = ", ".join(params) or "none"
            raise ctx.fail(f"{where}.{key}", f"{kind} has no parameter {key!r}; valid parameters: {valid}")
        expected = _kind(str(params[key].type))
        ok = {"integer": isinstance(value, int) and not isinstance(value, bool),
              "number": isinstance(value, (int, float)) and not isinstance(value, bool),
              "string": isinstance(value, str) or (value is None and "None" in str(params[key].type))}[expected]
        if not ok:
            raise ctx.fail(f"{where}.{key}", f"must be {'an' if expected == 'integer' else 'a'} {expected}, got {value!r}")
        args[key] = value
    try:
        return cls(**args)
    except WtnasError as exc:
        raise ctx.fail(where, str(exc)) from None


def _list(doc: dict, key: str, ctx: _Ctx) -> list:
    value = doc.get(key)
    if not isinstance(value, list) or not value:
        raise ctx.fail(key, f"needs a non-empty list of {key}")
    return value


def parse_space(path: str | Path) -> tuple[SearchSpace, dict]:
    """The search space and the problem settings of a space file (data not loaded)."""
    path = Path(path)
    ctx = _Ctx(path)
    doc = read_document(path)
    unknown = sorted(set(doc) - TOP_KEYS)
    if unknown:
        raise ctx.fail(unknown[0], f"unknown key{did_you_mean(unknown[0], TOP_KEYS)}; valid keys: "
                                   f"{', '.join(sorted(TOP_KEYS))}")
    inputs = []
    for i, item in enumerate(_list(doc, "inputs", ctx)):
        where = f"inputs[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ctx.fail(where, "an input is a table with a name and a shape, e.g. {name = \"x\", shape = [16]}")
        shape = item.get("shape")
        if not (isinstance(shape, list) and shape and all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                          for d in shape)):
            raise ctx.fail(f"{where}.shape", f"must be a list of positive integers (channels last), got {shape!r}")
        inputs.append(Input(item["name"], tuple(shape)))
    nodes: list[Node] = []
    for i, item in enumerate(_list(doc, "nodes", ctx)):
        where = f"nodes[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ctx.fail(where, "a node is a table with a name and either choices (variable) or op (constant)")
        extra = sorted(set(item) - {"name", "choices", "op", "inputs"})
        if extra:
            raise ctx.fail(f"{where}.{extra[0]}", "unknown key; a node has name, choices or op, and inputs")
        reads = item.get("inputs", [])
        if not (isinstance(reads, list) and all(isinstance(r, str) for r in reads)):
            raise ctx.fail(f"{where}.inputs", f"must be a list of node or input names, got {reads!r}")
        if ("choices" in item) == ("op" in item):
            raise ctx.fail(where, "give exactly one of choices (a variable node) or op (a constant node)")
        if "choices" in item:
            choices = item["choices"]
            if not isinstance(choices, list) or not choices:
                raise ctx.fail(f"{where}.choices", "must be a non-empty list of ops")
            ops = tuple(parse_op(c, ctx, f"{where}.choices[{k}]") for k, c in enumerate(choices))
            nodes.append(VariableNode(item["name"], ops, tuple(reads)))
        else:
            nodes.append(ConstantNode(item["name"], parse_op(item["op"], ctx, f"{where}.op"), tuple(reads)))
    try:
        space = SearchSpace(str(doc.get("name", path.stem)), tuple(inputs), tuple(nodes), doc.get("output"))
    except ValueError as exc:
        raise ctx.fail("nodes", str(exc)) from None
    if not space.variable_nodes:
        raise ctx.fail("nodes", "no variable node (a node with choices): there is nothing to search")
    settings = {
        "loss": doc.get("loss", "categorical_crossentropy"), "objective": doc.get("objective", "accuracy"),
        "batch_size": doc.get("batch_size", 32), "min_delta": doc.get("min_delta", 0.001),
        "description": doc.get("description", f"user-defined space from {path.name}"), "data": doc.get("data", {}),
    }
    for key, valid in (("loss", LOSSES), ("objective", OBJECTIVES)):
        if settings[key] not in valid:
            raise ctx.fail(key, f"{settings[key]!r} is not one of {', '.join(valid)}")
    if doc.get("direction", "max") != "max":
        raise ctx.fail("direction", "objectives are maximized; use objective = \"neg_mse\" to minimize an error")
    if not (isinstance(settings["batch_size"], int) and settings["batch_size"] > 0):
        raise ctx.fail("batch_size", f"must be a positive integer, got {settings['batch_size']!r}")
    if not isinstance(settings["data"], dict):
        raise ctx.fail("data", f"must be a table with keys among {', '.join(sorted(DATA_KEYS))}")
    unknown = sorted(set(settings["data"]) - DATA_KEYS)
    if unknown:
        raise ctx.fail(f"data.{unknown[0]}", f"unknown key{did_you_mean(unknown[0], DATA_KEYS)}; valid keys: "
                                             f"{', '.join(sorted(DATA_KEYS))}")
    classes = settings["data"].get("classes")
    if classes is not None and not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)
                                    and len(set(classes)) == len(classes)):
        raise ctx.fail("data.classes", f"must be a list of distinct class names (the label column's values, in the "
                                       f"order of the output units), got {classes!r}")
    normalize = settings["data"].get("normalize", N.DEFAULT_METHOD)
    if normalize not in N.METHODS:
        hint = did_you_mean(normalize, N.METHODS) if isinstance(normalize, str) else ""
        raise ctx.fail("data.normalize", f"{normalize!r} is not a valid choice{hint}; choose one of "
                                         f"{', '.join(repr(m) for m in N.METHODS)} (default {N.DEFAULT_METHOD!r})")
    settings["normalize"] = normalize
    # every architecture must at least resolve its first choices; shape errors show up here early
    try:
        space.resolve([0] * len(space.variable_nodes))
    except WtnasError as exc:
        raise ctx.fail("nodes", f"{exc} (with every node at its first choice)") from None
    return space, settings


def load_data(space: SearchSpace, settings: dict, data_path: str | Path | None, space_path: Path,
              loss: str, test_split: bool = True) -> Dataset:
    """The data of a space file, normalized as `data.normalize` says (statistics from the
    training split only); see load_prepared for the statistics and the warnings."""
    return load_prepared(space, settings, data_path, space_path, loss, test_split)[0]


def load_prepared(space: SearchSpace, settings: dict, data_path: str | Path | None, space_path: Path,
                  loss: str, test_split: bool = True
                  ) -> tuple[Dataset, N.Normalization, list[str], list[str] | None]:
    """(normalized data, the statistics applied, one-line warnings about the data, class names of
    named labels or None)."""
    data, path, columns, names = load_raw(space, settings, data_path, space_path, loss, test_split)
    return (*normalized(data, settings.get("normalize", N.DEFAULT_METHOD), [i.name for i in space.inputs], path,
                        space_path, columns), names)


def _data_file(raw: str, given: bool, space_path: Path) -> Path:
    """A data file named by --data (as given) or by the space file (relative to it)."""
    path = Path(raw) if given or Path(raw).is_absolute() else space_path.parent / raw
    if not path.is_file():
        raise SpaceFileError(f"{path}: data file not found")
    return path


def _read_arrays(path: Path, spec: dict, names: list[str]) -> tuple[dict[str, np.ndarray], list[str] | None]:
    """The arrays of a .npz, .h5 or .csv data file (a CSV as its feature matrix `x` and label `y`;
    class names stay strings here, `class_labels` numbers them)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        if len(names) != 1:
            raise SpaceFileError(f"{path}: CSV data feeds one input, the space has {len(names)}; use .npz or .h5")
        return _read_csv(path, spec)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:   # never unpickle: string labels are a str array
            return {k: z[k] for k in z.files}, None
    if suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            return {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}, None
    raise SpaceFileError(f"{path}: unknown data format {suffix!r}; use .npz, .h5 or .csv")


def is_named(y: np.ndarray) -> bool:
    """Labels given as class names (strings), not numbers."""
    return np.asarray(y).dtype.kind in "USO"


def class_names(spec: dict, labels: list[np.ndarray]) -> list[str] | None:
    """The classes behind named labels, numbered in this order: `data.classes` when the space file
    lists them, else the names found, sorted. None when the labels are numbers."""
    if not any(is_named(y) for y in labels):
        return None
    given = spec.get("classes")
    if given is not None:
        return [str(c) for c in given]
    return sorted({str(v) for y in labels for v in np.asarray(y).reshape(-1)})


def class_labels(y: np.ndarray, names: list[str] | None, path: Path, label: str) -> np.ndarray:
    """Named labels as class numbers 0..n-1 in `names`' order (numbers pass through); a name that
    is not a class is a one-line error naming the file, row and label column."""
    if not is_named(y):
        return np.asarray(y)
    if names is None:
        raise SpaceFileError(f"{path}: label column {label!r} holds class names but the run's data has numbered "
                             f"classes; give labels as numbers 0..n-1")
    index = {n: i for i, n in enumerate(names)}
    flat = [str(v) for v in np.asarray(y).reshape(-1)]
    unknown = next(((row, v) for row, v in enumerate(flat) if v not in index), None)
    if unknown is not None:
        where = f"line {unknown[0] + 2}" if path.suffix.lower() == ".csv" else f"row {unknown[0] + 1}"   # (header)
        raise SpaceFileError(f"{path}: {where}, label column {label!r}: {unknown[1]!r} is not one of the "
                             f"classes {', '.join(names)} (data.classes in the space file lists them)")
    return np.array([index[v] for v in flat], np.int64).reshape(np.asarray(y).shape)


def labelled_arrays(space: SearchSpace, settings: dict, path: Path, loss: str,
                    what: str = "data", classes: list[str] | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """A labelled file of the data file's form as (one array per input, labels): a separate test
    set (`data.test`), or data a user evaluates a model on (`wtnas evaluate --data`). Class names
    are numbered as in the run's data (`classes`, from `class_names`)."""
    spec = settings["data"]
    names = [i.name for i in space.inputs]
    arrays, _ = _read_arrays(path, spec, names)
    keys = [spec.get("x", "x")] if len(names) == 1 and spec.get("x", "x") in arrays else names
    label = spec.get("y", "y")
    missing = [k for k in keys + [label] if k not in arrays]
    if missing:
        raise SpaceFileError(f"{path} ({what}): lacks {', '.join(missing)}; it must have the form of the run's data "
                             f"file (found {', '.join(sorted(arrays)) or 'nothing'})")
    ytype = np.int64 if loss == "categorical_crossentropy" else np.float32
    y = class_labels(arrays[label], classes, path, spec.get("label", label))
    return [np.asarray(arrays[k], np.float32) for k in keys], np.asarray(y).astype(ytype)


def load_raw(space: SearchSpace, settings: dict, data_path: str | Path | None, space_path: Path,
             loss: str, test_split: bool = True) -> tuple[Dataset, Path, list[str] | None, list[str] | None]:
    """(the data as the file holds it, split but not normalized, the data file, CSV columns, the
    class names of named labels or None).

    The test split (held out from the search and from top-K selection) is `data.test`, a file of
    the same form, or the arrays' `_test` variants, or else `data.test_fraction` of the data
    (default 0.2); `test_split` false (runs made before test splits) holds out none."""
    spec = settings["data"]
    raw = data_path or spec.get("path")
    if not raw:
        raise SpaceFileError(f"{space_path}: no data: pass --data FILE (.npz, .h5 or .csv) or set data.path")
    path = _data_file(str(raw), bool(data_path), space_path)
    names = [i.name for i in space.inputs]
    arrays, columns = _read_arrays(path, spec, names)
    keys = [spec.get("x", "x")] if len(names) == 1 and spec.get("x", "x") in arrays else names
    label = spec.get("y", "y")
    ytype = np.int64 if loss == "categorical_crossentropy" else np.float32
    one = lambda xs: xs[0] if len(xs) == 1 else xs
    labels = [arrays[k] for k in (label, f"{label}_train", f"{label}_val", f"{label}_test") if k in arrays]
    classes = class_names(spec, labels)
    if classes is not None:
        if loss != "categorical_crossentropy":
            raise SpaceFileError(f"{path}: label column {spec.get('label', label)!r} holds names ({labels[0].reshape(-1)[0]!r}"
                                 f"), but loss {loss!r} needs numbers; use categorical_crossentropy for classes")
        arrays = {k: (class_labels(v, classes, path, spec.get("label", label)) if k in
                      (label, f"{label}_train", f"{label}_val", f"{label}_test") else v) for k, v in arrays.items()}
    separate = spec.get("test") if test_split else None
    test_fraction = float(spec.get("test_fraction", TEST_FRACTION)) if test_split and not separate else 0.0
    if all(k in arrays for k in keys) and label in arrays:
        xs = [np.asarray(arrays[k], np.float32) for k in keys]
        y = np.asarray(arrays[label])
        data = split(xs, y.astype(ytype), float(spec.get("val_fraction", 0.2)), int(spec.get("split_seed", 0)),
                     test_fraction=test_fraction)
    elif all(f"{k}_{s}" in arrays for k in keys + [label] for s in ("train", "val")):
        pick = lambda s: one([np.asarray(arrays[f"{k}_{s}"], np.float32) for k in keys])
        data = Dataset(pick("train"), np.asarray(arrays[f"{label}_train"]).astype(ytype),
                       pick("val"), np.asarray(arrays[f"{label}_val"]).astype(ytype))
        if test_split and not separate and all(f"{k}_test" in arrays for k in keys + [label]):
            data.x_test, data.y_test = pick("test"), np.asarray(arrays[f"{label}_test"]).astype(ytype)
    else:
        raise SpaceFileError(f"{path}: expected arrays {', '.join(keys)} and {label} (or each with _train/_val); "
                             f"found {', '.join(sorted(arrays)) or 'none'}")
    if separate:
        xs_test, data.y_test = labelled_arrays(space, settings, _data_file(str(separate), False, space_path), loss,
                                               "data.test", classes)
        data.x_test = one(xs_test)
    splits = [("training", data.x_train, data.y_train), ("validation", data.x_val, data.y_val)]
    if data.x_test is not None and data.y_test is not None:
        splits.append(("test", data.x_test, data.y_test))
    for what, x_split, _ in splits:
        source = f"data.test in {separate}" if what == "test" and separate else f"the data in {path}"
        for inp, x in zip(space.inputs, as_inputs(x_split)):
            if tuple(x.shape[1:]) != inp.shape:
                raise SpaceFileError(f"{space_path}: input {inp.name!r} has shape {list(inp.shape)} but {source} has "
                                     f"{list(x.shape[1:])} per sample: fix inputs.shape or the data")
    if loss == "categorical_crossentropy":
        out = space.output_units()
        labels = [y for _, _, y in splits]
        top = int(max(y.max(initial=0) for y in labels))
        if top >= out or min(y.min(initial=0) for y in labels) < 0:
            raise SpaceFileError(f"{path}: class labels go up to {top} but the output layer has {out} units "
                                 f"(labels must be 0..{out - 1})")
    return data, path, columns, classes


def normalized(data: Dataset, method: str, names: list[str], data_path, space_path,
               columns: list[str] | None = None) -> tuple[Dataset, N.Normalization, list[str]]:
    """Fit `method` on the training split, apply it to every split; warn when `method` is none
    and the feature scales differ by more than normalize.SCALE_RATIO_WARN."""
    xt, xv = as_inputs(data.x_train), as_inputs(data.x_val)
    norm = N.fit(method, xt, names)
    warnings = []
    if method == "none":
        found = N.scale_warning(xt, N.channel_labels(xt, names, columns), data_path, space_path)
        warnings = [found] if found else []
        return data, norm, warnings
    xt, xv = norm.apply(xt), norm.apply(xv)
    one = lambda xs: xs[0] if len(xs) == 1 else xs
    ready = Dataset(one(xt), data.y_train, one(xv), data.y_val)
    if data.x_test is not None and data.y_test is not None:
        ready.x_test, ready.y_test = one(norm.apply(as_inputs(data.x_test))), data.y_test
    return ready, norm, warnings


def _read_csv(path: Path, spec: dict) -> tuple[dict[str, np.ndarray], list[str]]:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise SpaceFileError(f"{path}: empty CSV file") from None
        rows = list(reader)
    label = spec.get("label", header[-1])
    if label not in header:
        raise SpaceFileError(f"{path}: no label column {label!r}; columns: {', '.join(header)}")
    features = spec.get("features") or [c for c in header if c != label]
    missing = [c for c in features if c not in header]
    if missing:
        raise SpaceFileError(f"{path}: feature columns {missing} not in the header")
    idx = [header.index(c) for c in features]
    x = np.empty((len(rows), len(idx)), np.float32)
    for row, r in enumerate(rows):
        if len(r) != len(header):
            raise SpaceFileError(f"{path}: line {row + 2} has {len(r)} values, the header {len(header)} columns")
        try:
            x[row] = [float(r[i]) for i in idx]
        except ValueError:
            col = next(c for c, i in zip(features, idx) if not _is_number(r[i]))
            value = r[header.index(col)]
            raise SpaceFileError(f"{path}: line {row + 2}, column {col!r}: "
                                 f"{'missing value' if not value.strip() else f'{value!r} is not a number'} (features "
                                 f"must be numbers; fill or drop the row)") from None
    at = header.index(label)
    raw = [r[at].strip() for r in rows]
    empty = next((row for row, v in enumerate(raw) if not v), None)
    if empty is not None:
        raise SpaceFileError(f"{path}: line {empty + 2}, label column {label!r}: missing value")
    # numbers, or class names ("yes"/"no"), numbered later (class_labels)
    y = np.array([float(v) for v in raw], np.float64) if all(map(_is_number, raw)) else np.array(raw, dtype=str)
    return {"x": x, "y": y}, list(features)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def file_problem(space: str | None = None, data: str | None = None, test_split: bool = True, **_) -> Problem:
    if not space:
        raise WtnasError("problem 'file' needs --space FILE (.toml or .yaml) and --data FILE")
    space_path = Path(space)
    search_space, settings = parse_space(space_path)
    warnings: list[str] = []

    def loader() -> Dataset:
        loaded, problem.normalization, found, problem.class_names = load_prepared(
            search_space, settings, data, space_path, settings["loss"], test_split)
        warnings[:] = found
        return loaded

    problem = Problem(search_space.name, search_space, loader, loss=settings["loss"],
                      objective=settings["objective"], batch_size=settings["batch_size"],
                      min_delta=float(settings["min_delta"]), description=settings["description"],
                      options={"space": space, "data": data, "test_split": test_split})
    problem.check_data = lambda: (problem.data(), list(warnings))[1]   # the scheduler shows the warnings once
    def raw_loader() -> Dataset:
        raw, _, _, problem.class_names = load_raw(search_space, settings, data, space_path, settings["loss"],
                                                  test_split)
        return raw

    problem.load_raw_data = raw_loader
    return problem
