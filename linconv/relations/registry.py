"""The registry of relations: register once, found by every consumer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from linconv.relations.record import Relation

__all__ = ["get", "names", "register", "registered", "relations", "unregister"]

_RELATIONS: dict[str, Relation] = {}


def register(relation: Relation) -> Relation:
    """Add ``relation``; its name must be new. Returns it, so a module can keep a handle."""
    if not isinstance(relation, Relation):
        raise TypeError(f"register: relation must be a linconv.relations.Relation, got {type(relation).__name__}")
    if relation.name in _RELATIONS:
        raise ValueError(f"register: a relation named {relation.name!r} is already registered")
    _RELATIONS[relation.name] = relation
    return relation


def unregister(name: str) -> None:
    _RELATIONS.pop(name, None)


@contextmanager
def registered(relation: Relation) -> Iterator[Relation]:
    """``relation`` registered for the duration of the block (tests, experiments)."""
    register(relation)
    try:
        yield relation
    finally:
        unregister(relation.name)


def get(name: str) -> Relation:
    try:
        return _RELATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"relation must be one of {names()}, got {name!r}") from None


def names() -> tuple[str, ...]:
    return tuple(_RELATIONS)


def relations() -> tuple[Relation, ...]:
    return tuple(_RELATIONS.values())
