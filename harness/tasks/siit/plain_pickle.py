"""Read pickles that may hold plain data only: no code runs while reading.

InterpBench ships a case's config and ground truth as pickles. A pickle can name any
callable to run when it is read; :func:`load_plain_pickle` admits only built-in
containers and scalars, numpy numbers (read as Python numbers), a
``HookedTransformerConfig`` (read as the dict of its fields, never constructed) and torch
dtypes and devices (read as their names). Anything else is a
one-line ValueError that names what the file asked for.

Example:
    >>> import pickle
    >>> load_plain_pickle(pickle.dumps({"n_layers": 2, "edges": [("a", "b")]}))
    {'n_layers': 2, 'edges': [('a', 'b')]}
    >>> load_plain_pickle(pickle.dumps(print))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the pickle asks for builtins.print, which is not plain data ...
"""

from __future__ import annotations

import io
import pickle
from typing import Any

_BUILTINS: dict[str, type] = {
    t.__name__: t
    for t in (dict, list, tuple, set, frozenset, str, int, float, bool, complex, bytes, bytearray)
}
_DTYPES = {"float16", "float32", "float64", "bfloat16", "int64", "int32", "bool"}


class _Fields(dict):
    """A pickled config object, read as the dict of its fields."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise ValueError("a pickled config whose state is not a dict of fields")
        self.update(state)


def _new_fields(cls: Any, *args: Any) -> _Fields:
    return _Fields()


_NUMPY_CORE = {"numpy.core.multiarray", "numpy._core.multiarray"}


def _numpy_dtype(spec: Any, *flags: Any) -> Any:
    import numpy

    if not isinstance(spec, str):
        raise ValueError("a pickled numpy dtype that is not named by a string")
    return numpy.dtype(spec)


def _numpy_scalar(dtype: Any, data: Any = b"") -> Any:
    """A pickled numpy scalar, read as the Python number it holds."""
    import numpy

    if not isinstance(dtype, numpy.dtype) or dtype.kind not in "biufc":
        raise ValueError("a pickled numpy scalar that is not a number")
    return numpy.frombuffer(bytes(data), dtype=dtype, count=1)[0].item()


def _device(*args: Any) -> str:
    return ":".join(str(a) for a in args)


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _BUILTINS:
            return _BUILTINS[name]
        if name == "HookedTransformerConfig" and module.split(".")[0] == "transformer_lens":
            return _Fields
        if module == "copyreg" and name == "_reconstructor":
            return _new_fields
        if module in _NUMPY_CORE and name == "scalar":
            return _numpy_scalar
        if module == "numpy" and name == "dtype":
            return _numpy_dtype
        if module == "torch" and name == "device":
            return _device
        if module == "torch" and name in _DTYPES:
            return f"torch.{name}"
        raise ValueError(
            f"the pickle asks for {module}.{name}, which is not plain data (refused: reading "
            "it would run code)"
        )


def load_plain_pickle(data: bytes) -> Any:
    """The plain data of a pickle (see the module); a one-line ValueError otherwise."""
    try:
        return _PlainUnpickler(io.BytesIO(data)).load()
    except ValueError:
        raise
    except Exception as error:  # a truncated or corrupt pickle
        raise ValueError(f"not a readable pickle ({type(error).__name__}: {error})") from None
