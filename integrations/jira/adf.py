"""Plain text to and from Atlassian Document Format, the shape Jira Cloud's v3 API takes and
gives descriptions in: a `doc` of paragraphs (split on blank lines), lines kept by hardBreaks."""

from __future__ import annotations

from typing import Any


def to_adf(text: str) -> dict[str, Any] | None:
    """`text` as an ADF document; None for no text (Jira's empty description)."""
    paragraphs = [p for p in text.strip().split("\n\n") if p.strip()]
    if not paragraphs:
        return None
    return {"type": "doc", "version": 1, "content": [_paragraph(p) for p in paragraphs]}


def _paragraph(text: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for i, line in enumerate(text.split("\n")):
        if i:
            content.append({"type": "hardBreak"})
        if line:
            content.append({"type": "text", "text": line})
    return {"type": "paragraph", "content": content}


def from_adf(doc: Any) -> str:
    """The text of an ADF document: its blocks' text joined by blank lines (marks, mentions
    and media are shown by their text, or left out)."""
    if isinstance(doc, str):
        return doc  # Data Center (v2) answers plain text
    if not isinstance(doc, dict):
        return ""
    blocks = [_inline_text(block) for block in doc.get("content") or []]
    return "\n\n".join(b for b in blocks if b)


def _inline_text(node: Any) -> str:
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text") or "")
    if node.get("type") == "hardBreak":
        return "\n"
    if node.get("type") == "mention":
        return str((node.get("attrs") or {}).get("text") or "")
    return "".join(_inline_text(child) for child in node.get("content") or [])
