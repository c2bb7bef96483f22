"""The event catalogue as Markdown, generated from :data:`~chatmgmt.webhook.CATALOGUE`.

``docs/webhooks.md`` holds this output between two marker comments; a test regenerates it and
fails when the page is stale. Pure: :func:`with_catalogue` returns the page's new text, the
caller reads and writes the file. To refresh the page::

    python -c "import pathlib, chatmgmt.webhook._docs as d; p = pathlib.Path('docs/webhooks.md');
    p.write_text(d.with_catalogue(p.read_text()))"
"""

from __future__ import annotations

import json

from ._catalogue import CATALOGUE, EventSpec, make_event

__all__ = ["BEGIN", "END", "example_envelope", "render_catalogue_markdown", "with_catalogue"]

BEGIN = "<!-- BEGIN GENERATED CATALOGUE (chatmgmt.webhook.render_catalogue_markdown) -->"
END = "<!-- END GENERATED CATALOGUE -->"
_EXAMPLE_TS = 1764000000.0


def example_envelope(spec: EventSpec) -> dict[str, object]:
    """The example event of ``spec`` as a receiver gets it (the whole envelope)."""
    chat_id = spec.example.get("chat_id")
    event = make_event(
        "evt_01J9Z6X8Q4",
        spec.type,
        _EXAMPLE_TS,
        spec.example,
        chat_id=chat_id if isinstance(chat_id, str) else None,
        seq=3 if isinstance(chat_id, str) else 0,
    )
    return event.envelope()


def render_catalogue_markdown() -> str:
    """Every event type: description, schema version, fields and an example payload."""
    lines = ["| type | schema | description |", "|---|---|---|"]
    for spec in CATALOGUE.values():
        lines.append(
            f"| [`{spec.type}`](#{_anchor(spec.type)}) | {spec.version} | {spec.description} |"
        )
    for spec in CATALOGUE.values():
        lines += [
            "",
            f"### `{spec.type}`",
            "",
            f"{spec.description} Schema version {spec.version}.",
            "",
        ]
        lines += ["| field of `data` | meaning |", "|---|---|"]
        for name, meaning in spec.fields.items():
            lines.append(f"| `{name}` | {meaning} |")
        body = json.dumps(example_envelope(spec), indent=2, ensure_ascii=False)
        lines += ["", "```json", body, "```"]
    return "\n".join(lines) + "\n"


def _anchor(type_: str) -> str:
    return type_.replace(".", "").lower()


def with_catalogue(page: str) -> str:
    """``page`` (the text of ``docs/webhooks.md``) with its generated section rendered anew."""
    head, _, rest = page.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{render_catalogue_markdown()}{END}{tail}"
