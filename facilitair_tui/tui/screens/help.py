"""F1 / ?: every key of the app and the main screen, read from the bindings themselves.

The rows are generated from the bindings the app and the screen declare (inherited ones
included, merged the way Textual merges them) with the keymap applied, so a remapped key shows
its new key. Keys the footer hides for now (stop once the session is over, say) are listed too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static


@dataclass(frozen=True)
class HelpRow:
    keys: str
    description: str
    tooltip: str
    scope: str  # "screen" or "app"
    binding_id: str = ""


def declared_bindings(node: DOMNode, keymap: Mapping[str, str]) -> list[Binding]:
    """The bindings of ``node``'s class and its bases, merged the way Textual merges them (a
    subclass's binding for a key replaces its bases'), the node's own first, keymap applied."""
    claimed: set[str] = set()
    layers: list[BindingsMap] = []
    for cls in type(node).__mro__:
        if not issubclass(cls, DOMNode) or "BINDINGS" not in cls.__dict__:
            continue
        layer = BindingsMap(cls.__dict__["BINDINGS"])
        layer.key_to_bindings = {k: v for k, v in layer.key_to_bindings.items() if k not in claimed}
        claimed.update(layer.key_to_bindings)
        layers.append(layer)
    merged = BindingsMap.from_keys({k: v for layer in layers for k, v in layer.key_to_bindings.items()})
    merged.apply_keymap(dict(keymap))
    return [binding for _key, binding in merged]


def binding_rows(app: App[Any], nodes: Mapping[str, DOMNode], keymap: Mapping[str, str]) -> list[HelpRow]:
    """One row per binding of each node (``{"screen": main_screen, "app": app}``), its keys grouped."""
    rows: list[HelpRow] = []
    for scope, node in nodes.items():
        grouped: dict[str, tuple[list[str], Binding]] = {}
        for binding in declared_bindings(node, keymap):
            if binding.system:
                continue
            keys, _first = grouped.setdefault(binding.id or binding.action, ([], binding))
            display = app.get_key_display(binding)
            if display not in keys:
                keys.append(display)
        for keys, binding in grouped.values():
            description = binding.description or binding.action.replace("_", " ")
            rows.append(HelpRow(" / ".join(keys), description, binding.tooltip, scope, binding.id or ""))
    return rows


SCOPES = (("screen", "This screen"), ("app", "Everywhere"))


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "close", "Close", id="help.close", tooltip="Close the help"),
    ]

    def __init__(self, rows: list[HelpRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="dialog"):
            yield Static("Keys", classes="dialog-title")
            with VerticalScroll(id="help-scroll"):
                for scope, heading in SCOPES:
                    rows = [row for row in self.rows if row.scope == scope]
                    if not rows:
                        continue
                    yield Static(heading, classes="help-heading")
                    for row in rows:
                        with Horizontal(classes="help-row"):
                            yield Static(row.keys, classes="help-keys", markup=False)
                            yield Static(row.description, classes="help-description", markup=False)
                            yield Static(row.tooltip, classes="help-tooltip", markup=False)
                            yield Static(row.binding_id, classes="help-id", markup=False)
            yield Static(
                "Remap a key in the keymap by the id on the right. Esc closes this.",
                classes="dialog-detail",
                markup=False,
            )

    @property
    def text(self) -> str:
        """Everything the help shows, as plain text."""
        return "\n".join(str(static.render()) for static in self.query(Static))

    def action_close(self) -> None:
        self.dismiss(None)
