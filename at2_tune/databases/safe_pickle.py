"""A restricted unpickler for the public HyperRec / LCBench release files.

The released ``profiles.pkl`` files were written with ``dill``: beside plain dicts and numpy
arrays they hold a serialized lambda (the ``default_factory`` of a ``defaultdict``), i.e. a
code object that a normal ``pickle.load`` would rebuild and could execute. This module never
builds code: every global the stream asks for is looked up in an explicit allow-list, and the
``dill`` helpers the release uses are replaced by inert stand-ins:

* ``dill._dill._create_code`` / ``_create_function`` return :data:`INERT_FACTORY`, so the
  lambda becomes ``None`` as a ``defaultdict`` factory (the dict behaves like a plain dict);
* ``dill._dill._load_type`` only resolves the names ``dict`` and ``list``;
* ``dill._dill._import_module`` / ``_get_attr`` only resolve numpy's array reconstructor;
* the ``__main__`` globals dict that dill attaches to the lambda becomes an empty dict.

Anything else (``os.system``, ``builtins.eval``, ``subprocess.Popen``, ...) raises
:class:`~at2_tune.errors.UnsafePickleError` before it is called.
"""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

from at2_tune.errors import DatabaseError, UnsafePickleError

INERT_FACTORY = None
"""What a serialized function turns into: ``defaultdict(None)`` never calls anything."""

_NUMPY_MODULES = ("numpy.core._multiarray_umath", "numpy._core._multiarray_umath",
                  "numpy.core.multiarray", "numpy._core.multiarray")
_NUMPY_RECONSTRUCT = np.zeros(0).__reduce__()[0]
"""numpy's own array reconstructor, found without importing a private module by name."""
_LOADABLE_TYPES: dict[str, type] = {"dict": dict, "list": list}


class _NumpyModuleRef:
    """Stand-in for an imported numpy module: only ``_reconstruct`` can be read from it."""

    def __init__(self, name: str) -> None:
        self.name = name


def _inert_create_code(*_args: Any) -> None:
    return INERT_FACTORY


def _inert_create_function(*_args: Any) -> None:
    return INERT_FACTORY


def _load_type(name: str) -> type:
    try:
        return _LOADABLE_TYPES[name]
    except (KeyError, TypeError):
        raise UnsafePickleError(f"refused to load type {name!r}: only {sorted(_LOADABLE_TYPES)} "
                                "may be rebuilt from a database file") from None


def _import_module(name: str) -> _NumpyModuleRef:
    if name not in _NUMPY_MODULES:
        raise UnsafePickleError(f"refused to import module {name!r} from a pickle")
    return _NumpyModuleRef(name)


def _get_attr(obj: Any, name: str) -> Callable[..., Any]:
    if isinstance(obj, _NumpyModuleRef) and name == "_reconstruct":
        return _NUMPY_RECONSTRUCT
    raise UnsafePickleError(f"refused to read attribute {name!r} of {obj!r} from a pickle")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "defaultdict"): collections.defaultdict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("dill._dill", "_create_code"): _inert_create_code,
    ("dill._dill", "_create_function"): _inert_create_function,
    ("dill._dill", "_load_type"): _load_type,
    ("dill._dill", "_import_module"): _import_module,
    ("dill._dill", "_get_attr"): _get_attr,
    ("__builtin__", "__main__"): {},
    ("builtins", "__main__"): {},
}
for _module in _NUMPY_MODULES:
    _ALLOWED[(_module, "_reconstruct")] = _NUMPY_RECONSTRUCT


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` only returns allow-listed, code-free objects."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refused to load global {module}.{name}; database files may "
                "only contain dicts, defaultdicts, lists, numpy arrays and scalars. The file is "
                "not a genuine release file: delete it and fetch it again with "
                "`at2-tune data fetch`.") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._source}: refused persistent id {pid!r}")


def safe_load(data: bytes, source: str) -> Any:
    """Unpickle ``data`` (the bytes of ``source``) without building any code or unknown object.

    Raises:
        UnsafePickleError: the stream asks for a global outside the allow-list.
        DatabaseError: the stream is truncated or otherwise not a valid pickle.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # truncated or garbled streams raise many different types
        raise DatabaseError(f"{source}: not a readable database pickle ({type(exc).__name__}: "
                            f"{exc}); the file is truncated or corrupt: delete it and fetch it "
                            "again with `at2-tune data fetch`.") from exc


def safe_load_file(path: Path) -> Any:
    """:func:`safe_load` applied to the bytes of ``path``."""
    return safe_load(Path(path).read_bytes(), str(path))
