"""Flipping one system's `selected` switch in a route table's text, leaving everything else exactly as written.

Operators keep comments and layout in these documents, so the switch is changed by editing the text at the value's
recorded position rather than by re-serialising the data. When the system has no `selected` key yet, the key is
inserted next to its `system` key, in the style of the surrounding mapping (block YAML or flow/JSON).
"""

from __future__ import annotations

import copy

from ..document import SourceDocument, ValueSpan, load_document


class SystemNotFound(LookupError):
    """The route table has no system of that name."""


def set_selection(text: str, system: str, selected: bool) -> str:
    return edit_selection(load_document(text), system, selected).text


def edit_selection(doc: SourceDocument, system: str, selected: bool) -> SourceDocument:
    """set_selection on a document already parsed; returns the edited document, parsed (by the check of the edit),
    so a caller that compiles it next parses nothing again."""
    text = doc.text
    index = _find_system(doc, system)
    literal = "true" if selected else "false"
    entry_path = f"systems[{index}]"
    if "selected" in doc.data["systems"][index]:
        new_text = _replace_value(text, doc.spans[f"{entry_path}.selected"], literal)
    else:
        new_text = _insert_key(text, doc.spans[entry_path], doc.spans[f"{entry_path}.system"], literal)
    return _check_rewrite(doc, new_text, index, selected)


def _find_system(doc: SourceDocument, system: str) -> int:
    systems = doc.data.get("systems")
    if isinstance(systems, list):
        for index, entry in enumerate(systems):
            if isinstance(entry, dict) and entry.get("system") == system:
                return index
    raise SystemNotFound(f"route table '{doc.name}' has no system '{system}'")


def _replace_value(text: str, span: ValueSpan, literal: str) -> str:
    start, end = span.start_offset, span.end_offset
    if start == end and text[start - 1 : start] == ":":  # `selected:` with no value at all
        literal = " " + literal
    return text[:start] + literal + text[end:]


def _insert_key(text: str, entry: ValueSpan, system_value: ValueSpan, literal: str) -> str:
    if text[entry.start_offset] == "{":
        # Flow mapping (JSON, or YAML `{...}`): a quoted key is valid in both.
        at = system_value.end_offset
        return text[:at] + f', "selected": {literal}' + text[at:]
    # Block mapping: a new line under the `system:` line, at the mapping's indentation, keeping that line's comment.
    line_end = text.find("\n", system_value.end_offset)
    newline = "\n"
    if line_end == -1:
        line_end = len(text)
    elif text[line_end - 1 : line_end] == "\r":
        line_end, newline = line_end - 1, "\r\n"
    indent = " " * (entry.column - 1)
    return text[:line_end] + f"{newline}{indent}selected: {literal}" + text[line_end:]


def _check_rewrite(doc: SourceDocument, new_text: str, index: int, selected: bool) -> SourceDocument:
    """The edit must change that one value and nothing else; anything else is a bug, never a silent corruption."""
    expected = copy.deepcopy(doc.data)
    expected["systems"][index]["selected"] = selected
    edited = load_document(new_text)
    if edited.data != expected:
        raise ValueError(f"could not rewrite 'selected' of systems[{index}] in place; the document was left unchanged")
    return edited
