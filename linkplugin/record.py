"""Plain records: the few value classes of the command's start-up path.

They were dataclasses; ``@dataclass`` writes and compiles each class's methods when the module
is imported, 0.6 to 1.1 ms a class (python 3.11), about 10 ms for the thirteen a merge imports,
and the ``dataclasses`` module brings ``inspect`` (~5 ms more for the compress command, which
does not import numpy). A record lists its fields in ``__slots__`` and sets them in its own
``__init__``; this base gives it a dataclass's ``repr`` and ``==`` by those fields.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import Any


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
