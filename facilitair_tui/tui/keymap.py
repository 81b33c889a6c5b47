"""The ``[keys]`` table of the config file: binding id -> key(s), checked against the real ids.

Every ``Binding`` in the app has an id; ``known_binding_ids`` collects them from the app and from
every screen and widget module, so a typo in the config is named instead of silently ignored.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping

from textual.binding import Binding
from textual.dom import DOMNode

_FRONT_END_PACKAGES = ("facilitair_tui.tui.screens", "facilitair_tui.tui.widgets")


def _import_front_end() -> None:
    for package_name in _FRONT_END_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{module.name}")


def _subclasses(cls: type[DOMNode]) -> Iterable[type[DOMNode]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def known_binding_ids() -> set[str]:
    """Ids of every Binding on a loaded node class (ours and Textual's own)."""
    _import_front_end()
    ids: set[str] = set()
    for cls in {DOMNode, *_subclasses(DOMNode)}:
        for binding in getattr(cls, "BINDINGS", ()):
            if isinstance(binding, Binding) and binding.id:
                ids.add(binding.id)
    return ids


def unknown_binding_ids(keymap: Mapping[str, str]) -> list[str]:
    known = known_binding_ids()
    return sorted(binding_id for binding_id in keymap if binding_id not in known)
