"""A pickle module for ``torch.load`` that never runs code from a checkpoint.

Globals a checkpoint may name are split three ways:
- an allow-list of data constructors (tensors, storages, OrderedDict, plain builtins);
- classes from the authors' training code (``ltr.*``, ``pytracking.*``), which is not
  installed: replaced by inert ``Placeholder`` objects that only record their state;
- anything else (``os.system``, ``builtins.eval``, ``subprocess.Popen`` ...): refused with
  ``UnsafeCheckpointError`` before it can be called.
"""
from __future__ import annotations

import collections
import pickle
import types

import torch


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The checkpoint names a global that could execute code."""


PLACEHOLDER_MODULE_PREFIXES = ('ltr.', 'pytracking.')

ALLOWED_GLOBALS = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('types', 'SimpleNamespace'): types.SimpleNamespace,
    ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
    ('torch._utils', '_rebuild_tensor'): torch._utils._rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): torch._utils._rebuild_parameter,
    ('torch', 'Size'): torch.Size,
    ('torch', 'device'): torch.device,
    ('builtins', 'set'): set,
    ('builtins', 'frozenset'): frozenset,
    ('builtins', 'slice'): slice,
    ('builtins', 'complex'): complex,
}
_ALLOWED_DTYPE_NAMES = {name for name in dir(torch) if isinstance(getattr(torch, name, None), torch.dtype)}


class Placeholder:
    """Stands in for a class of the authors' code; holds its arguments and state, does nothing."""

    qualified_name = '?'

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f'<placeholder for {self.qualified_name}>'


def _placeholder_class(module: str, name: str) -> type:
    return type(name, (Placeholder,), {'qualified_name': f'{module}.{name}', '__module__': 'placeholder'})


class Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        key = (module, name)
        if key in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[key]
        if module == 'torch' and (name.endswith('Storage') or name in _ALLOWED_DTYPE_NAMES):
            return getattr(torch, name)
        if module == 'torch.storage' and name == 'UntypedStorage':
            return torch.UntypedStorage
        if (module + '.').startswith(PLACEHOLDER_MODULE_PREFIXES):
            return _placeholder_class(module, name)
        raise UnsafeCheckpointError(
            f'checkpoint refers to {module}.{name}, which is not a tensor/data type: refusing to load '
            'it (a checkpoint must not run code)')


def load(file, **kwargs):
    return Unpickler(file, **kwargs).load()


def loads(data: bytes, **kwargs):
    import io
    return Unpickler(io.BytesIO(data), **kwargs).load()
