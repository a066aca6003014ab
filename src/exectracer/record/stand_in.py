"""What makes a replacement pass for the object it replaced while tracing.

Real libraries look closely at what the recorder replaces: trio asserts that
its lock's class comes from ``_thread``; ``pickle`` and ``copy`` take a
function by its qualified name and check that the name still finds it
(``ProcessPoolExecutor().submit(time.sleep, 1)`` pickles ``time.sleep``);
``inspect`` follows ``__wrapped__``; ``isinstance`` asks ``__class__``. So,
for everything ``Patcher.replace`` puts in place:

* it has the original's ``__module__``, ``__qualname__``, ``__name__`` and
  ``__doc__``, and its ``__wrapped__`` is the original (``pass_for``), so
  ``inspect.signature`` gives the original's;
* the C hooks (``_speedups``' ``Timed``, ``StepRunner``, ...) and the Python
  stand-ins for builtins (``stand_in``) also answer ``__class__`` (for
  ``isinstance``) and ``repr`` as the original does, and are bound as a
  method only where the original is (``nap = time.sleep`` in a class body);
* it pickles as the original does, by name (a builtin's other name, as
  ``posix.read`` is ``os.read``'s, is replaced too), so that ``pickle.loads``
  where the tracer is not running gives the original; copying gives it back
  unchanged;
* a builtin saved before tracing started (``from time import sleep``) still
  pickles while its name holds the replacement (``DisplacedBuiltins``).

Objects made while tracing (locks, asyncio's handles) pass for the
originals' in ``sync_waits`` and ``asyncio_hooks``. ``type()`` alone tells a
replacement from the original.
"""

from __future__ import annotations

import contextlib
import copyreg
import functools
import sys
from collections.abc import Callable
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import TYPE_CHECKING, Any, SupportsIndex


def pass_for(value: Any, original: Any) -> None:
    """Make ``value``, about to replace ``original``, answer for it: names, doc, ``__wrapped__``."""
    if value is original or isinstance(value, type) or not callable(original):
        return
    if type(value) is FunctionType:
        functools.update_wrapper(value, original, updated=())
    elif not hasattr(value, "__wrapped__"):  # a C hook: from then on it answers as the original
        with contextlib.suppress(AttributeError, TypeError):
            value.__wrapped__ = original


def _original_type(stand_in: StandIn) -> type:
    return type(stand_in.__wrapped__)


def _original_module(stand_in: StandIn) -> Any:
    return stand_in.__wrapped__.__module__  # AttributeError (a method descriptor has none): __getattr__ says so


class StandIn:
    """Base of what the Python hooks put in place of a builtin or a method descriptor, which a Python function
    cannot pass for. Made by ``stand_in``; all but calling and binding is the original's."""

    __slots__ = ("__wrapped__",)
    __wrapped__: Any
    __class__ = property(_original_type)  # isinstance(time.sleep, BuiltinFunctionType)

    if TYPE_CHECKING:

        def __call__(self, *args: Any, **kwargs: Any) -> Any: ...  # each stand-in's class has its own

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped__, name)

    def __repr__(self) -> str:
        return repr(self.__wrapped__)

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        return by_attribute(self.__wrapped__, self.__wrapped__.__reduce_ex__(protocol))

    def __reduce__(self) -> str | tuple[Any, ...]:
        return by_attribute(self.__wrapped__, self.__wrapped__.__reduce__())


def by_attribute(original: Any, reduced: str | tuple[Any, ...]) -> str | tuple[Any, ...]:
    """``original``'s reduction, a dotted global name (a Cython method's: ``"Loop.call_soon"``) made
    ``getattr(owner, name)``: pickle would check that the name finds the object pickled, which is the stand-in
    when it was set on a subclass (``uvloop.Loop``) and the name finds the original on its base."""
    if not isinstance(reduced, str) or "." not in reduced:
        return reduced
    module = getattr(original, "__module__", None)
    owner_name, _, name = reduced.rpartition(".")
    owner = _find(module, owner_name) if isinstance(module, str) else None
    if owner is None or getattr(owner, name, None) is not original:
        return reduced
    return getattr, (owner, name)


def stand_in(original: Callable[..., Any], call: Callable[..., Any]) -> StandIn:
    """``call``, passing for ``original`` (a builtin function, a method descriptor).

    Each one has a class of its own, whose ``__call__`` is ``call`` itself
    (no frame in between) and whose ``__doc__`` is the original's. It is
    bound as a method where the original is (a method descriptor), else
    never.
    """
    namespace: dict[str, Any] = {
        "__slots__": (),
        "__module__": property(_original_module),
        "__doc__": original.__doc__,
        "__call__": staticmethod(call),
    }
    if hasattr(type(original), "__get__"):

        def bind(self: StandIn, instance: object, owner: type | None = None) -> Any:
            return self if instance is None else MethodType(self, instance)  # as the C Timed binds

        namespace["__get__"] = bind
    made: StandIn = object.__new__(type("StandIn", (StandIn,), namespace))
    made.__wrapped__ = original
    return made


class DisplacedBuiltins:
    """Builtins whose name finds their replacement while tracing (``time.sleep``), pickled all the same.

    ``pickle`` takes a builtin by its name and checks that the name finds
    it, so the original, saved before tracing started (``from time import
    sleep``), could not be pickled while its name holds the replacement.
    While one is displaced, ``copyreg.dispatch_table`` has a reduction for
    builtins: a displaced one pickles as ``pkgutil.resolve_name("time:sleep")``
    (the function of that name where it is unpickled); any other as without
    it. (A Python function cannot be helped: ``pickle`` asks no table for
    one.)
    """

    def __init__(self) -> None:
        self._names: dict[int, tuple[Any, str]] = {}  # id(original) -> (original, "module:qualname")
        self._installed = False
        self._previous: Any = None  # the table's entry for builtins before ours

    def check(self, original: Any) -> None:
        """Note ``original`` if it is a builtin that its own name no longer finds."""
        if type(original) is not BuiltinFunctionType:
            return
        module, qualname = getattr(original, "__module__", None), getattr(original, "__qualname__", None)
        if not isinstance(module, str) or not isinstance(qualname, str) or _find(module, qualname) is original:
            return
        self._names[id(original)] = (original, f"{module}:{qualname}")
        if not self._installed:
            self._previous = copyreg.dispatch_table.get(BuiltinFunctionType)
            copyreg.dispatch_table[BuiltinFunctionType] = self._reduce
            self._installed = True

    def restore(self) -> None:
        """Take the reduction out of ``copyreg.dispatch_table`` (unless something else replaced it since)."""
        if self._installed and copyreg.dispatch_table.get(BuiltinFunctionType) == self._reduce:
            if self._previous is None:
                del copyreg.dispatch_table[BuiltinFunctionType]
            else:
                copyreg.dispatch_table[BuiltinFunctionType] = self._previous
        self._installed = False
        self._previous = None
        self._names.clear()

    def _reduce(self, func: Any) -> str | tuple[Any, ...]:
        found = self._names.get(id(func))
        if found is not None and found[0] is func:
            from pkgutil import resolve_name  # only when one is pickled

            return resolve_name, (found[1],)
        if self._previous is not None:
            return self._previous(func)
        return func.__reduce__()  # what pickle does without the table


def _find(module: str, qualname: str) -> Any:
    """What ``module.qualname`` finds now (None if nothing)."""
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found
