"""Named plug-ins: built-ins plus anything installed under an entry-point group ``synthgate.<kind>``."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownPlugin(LookupError):
    pass


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            return factory

        return decorate

    def names(self) -> list[str]:
        found = {ep.name for ep in entry_points(group=f"synthgate.{self.kind}")}
        return sorted(found | set(self._factories))

    def factory(self, name: str) -> Callable[..., T]:
        if name in self._factories:
            return self._factories[name]
        for ep in entry_points(group=f"synthgate.{self.kind}"):
            if ep.name == name:
                loaded: Callable[..., T] = ep.load()
                self._factories[name] = loaded
                return loaded
        raise UnknownPlugin(f"no {self.kind} named {name!r}; known: {', '.join(self.names()) or 'none'}")

    def create(self, name: str, *args: object, **kwargs: object) -> T:
        return self.factory(name)(*args, **kwargs)
