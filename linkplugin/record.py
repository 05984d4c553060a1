"""Plain records: the few value classes of the command's start-up path, and the base of the
DWARF engine's tuple classes (``NamedTuple``, typing's class syntax without importing typing).

They were dataclasses; ``@dataclass`` writes and compiles each class's methods when the module
is imported, 0.6 to 1.1 ms a class (python 3.11), about 10 ms for the thirteen a merge imports,
and the ``dataclasses`` module brings ``inspect`` (~5 ms more for the compress command, which
does not import numpy). A record lists its fields in ``__slots__`` and sets them in its own
``__init__``; this base gives it a dataclass's ``repr`` and ``==`` by those fields.
"""
from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import Any
    from typing import NamedTuple as NamedTuple


class Record:
    """Fields are ``__slots__`` (of the class and its bases), or ``_fields`` for a record that
    keeps an instance dict."""

    __slots__: tuple[str, ...] = ()
    _fields: tuple[str, ...] = ()

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        if cls._fields:
            return cls._fields
        return tuple(f for klass in reversed(cls.__mro__) for f in getattr(klass, "__slots__", ()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{f}={getattr(self, f)!r}' for f in self.fields())})"

    def __eq__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.fields())

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass without frozen=True


class Value(Record):
    """A record not changed once made (by convention: unlike a frozen dataclass nothing refuses
    an assignment), hashable by its fields."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, f) for f in self.fields()))


if not TYPE_CHECKING:
    class _TupleClass(type):
        """typing.NamedTuple's class syntax, for the DWARF engine's tuples, without importing
        typing: the engine's import is on a merge's critical path (it runs on a thread while the
        input is read and the read finishes first), and typing was 2.2 ms of its 14 ms. As
        typing's: the annotated names are the fields in order, their class values the defaults,
        and the class made is collections.namedtuple's with the body's other attributes."""

        def __new__(mcls, name: str, bases: tuple, ns: dict) -> type:
            if not bases:
                return super().__new__(mcls, name, bases, ns)
            fields = list(ns.get("__annotations__", {}))
            defaults = [ns[f] for f in fields if f in ns]
            if any(f not in ns for f in fields[len(fields) - len(defaults):]):  # (namedtuple would shift them)
                raise TypeError(f"{name}: a field without a default follows one with a default")
            made = namedtuple(name, fields, defaults=defaults, module=ns["__module__"])
            made.__qualname__ = ns.get("__qualname__", name)
            for key, value in ns.items():
                if key not in fields and key not in _NOT_COPIED:
                    setattr(made, key, value)
            return made

    _NOT_COPIED = frozenset({"__module__", "__qualname__", "__dict__", "__weakref__"})

    class NamedTuple(metaclass=_TupleClass):
        """Base of a tuple class declared as typing.NamedTuple's are."""
