"""Lab markdown to sanitised HTML, with code blocks marked for the page's run and copy buttons.

Two layers keep a lab's script away from the page: markdown-it renders raw HTML as text (an
author's ``<script>`` comes out as text), except bare ``<details>``, ``<summary>`` and ``<br>``
(a collapsed solution, a line break), and nh3 (the Ammonia sanitiser) then keeps only
an allow-list of tags, attributes and URL schemes, so a link to ``javascript:`` or an
``onerror=`` cannot survive even if the renderer let one through.

Every fenced or indented code block becomes::

    <div class="lab-code" data-action="run|copy"><pre><code class="language-sh">...</code></pre></div>

``run`` when the fence's info string has the word ``run`` (```` ```sh run ````), else ``copy``.
The page adds the buttons and types ``code.textContent`` into the terminal for ``run``: the one
on screen, or the first terminal of the node named after ``run`` (```` ```sh run node2 ````, which
adds ``data-node="node2"`` to the div) in a session of several nodes.

A link to ``port:8080`` or ``port:node2:8080`` becomes
``<a class="lab-port" href="#" data-port="8080" data-node="node2">``: the page opens that port
of that node (of the node on screen without one) through the session's port link.
"""

from __future__ import annotations

import html
import re
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

ACTIONS = ("run", "copy")

TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "td": {"style"},
    "th": {"style"},
}
MAX_NODE_TARGET = 100  # a run block may name node1 to node100 (a session has at most PLAYGROUND_MAX_NODES)
NODE_TARGETS = {f"node{number}" for number in range(1, MAX_NODE_TARGET + 1)}
MAX_PORT = 65535
PORTS = {str(port) for port in range(1, MAX_PORT + 1)}
ATTRIBUTE_VALUES = {
    "div": {"data-action": set(ACTIONS), "data-node": NODE_TARGETS},
    "a": {"data-node": NODE_TARGETS, "data-port": PORTS},
}
# A link to ``port:8080`` or ``port:node2:8080`` is a port link: the page opens that port of the
# node on screen (or of the node named) through the session's port links.
PORT_LINK = re.compile(r"^port:(?:(node\d+):)?(\d+)$")
CLASSES = {
    "a": {"lab-port"},
    "div": {"lab-code"},
    "code": {
        f"language-{name}"
        for name in (
            "sh",
            "bash",
            "shell",
            "console",
            "text",
            "plain",
            "python",
            "json",
            "yaml",
            "toml",
            "ini",
            "dockerfile",
            "c",
            "go",
            "js",
            "javascript",
            "html",
            "css",
            "sql",
            "diff",
            "makefile",
        )
    },
}
URL_SCHEMES = {"http", "https", "mailto"}


def block_action(info: str) -> str:
    """``run`` when a fence's info string marks it runnable (any word after the language is ``run``)."""
    words = info.split()
    return "run" if "run" in words[1:] or words[:1] == ["run"] else "copy"


def block_node(info: str) -> str:
    """The node a run block types into (a word ``node<n>`` after ``run`` in its info string, as in
    ``sh run node2``); empty for the node on screen, and for copy blocks."""
    words = info.split()
    if block_action(info) != "run":
        return ""
    return next((word for word in words[words.index("run") + 1 :] if word in NODE_TARGETS), "")


def _fence(renderer: object, tokens: list[Token], index: int, options: object, env: object) -> str:
    token = tokens[index]
    info = token.info.strip() if token.type == "fence" else ""
    language = info.split()[0] if info and info.split()[0] not in ACTIONS else ""
    code_class = f' class="language-{html.escape(language, quote=True)}"' if language else ""
    node = block_node(info)
    node_attribute = f' data-node="{node}"' if node else ""
    return (
        f'<div class="lab-code" data-action="{block_action(info)}"{node_attribute}><pre><code{code_class}>'
        f"{html.escape(token.content)}</code></pre></div>\n"
    )


# The only raw HTML a lab's markdown may hold (Killercoda scenarios use it for hidden solutions):
# <details> (always collapsed: its attributes, ``open`` too, are dropped), <summary> and <br>.
RAW_TAG = re.compile(r"<(/?)(details|summary)(?:\s[^<>]*)?>|<br\s*/?>", re.IGNORECASE)


def _raw_html(content: str) -> str:
    """Raw HTML of the markdown: the allowed tags of RAW_TAG kept (lower case, without attributes),
    everything else escaped, so it shows as text."""
    out, at = [], 0
    for found in RAW_TAG.finditer(content):
        out.append(html.escape(content[at : found.start()]))
        name = found.group(2)
        out.append(f"<{found.group(1)}{name.lower()}>" if name else "<br>")
        at = found.end()
    out.append(html.escape(content[at:]))
    return "".join(out)


def _html_block(renderer: object, tokens: list[Token], index: int, options: object, env: object) -> str:
    content = tokens[index].content
    kept = _raw_html(content)
    return kept if RAW_TAG.search(content) else f"<p>{kept.rstrip()}</p>\n"


def _html_inline(renderer: object, tokens: list[Token], index: int, options: object, env: object) -> str:
    return _raw_html(tokens[index].content)


def _link_open(renderer: Any, tokens: list[Token], index: int, options: object, env: object) -> str:
    """A ``port:[nodeN:]PORT`` link as ``<a class="lab-port" data-port=.. [data-node=..] href="#">``;
    any other link as markdown-it renders it."""
    token = tokens[index]
    found = PORT_LINK.match(str(token.attrGet("href") or ""))
    if found and found.group(1) in NODE_TARGETS | {None} and found.group(2) in PORTS:
        node = f' data-node="{found.group(1)}"' if found.group(1) else ""
        return f'<a class="lab-port" href="#" data-port="{found.group(2)}"{node}>'
    return str(renderer.renderToken(tokens, index, options, env))


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("fence", _fence)
    md.add_render_rule("code_block", _fence)
    md.add_render_rule("html_block", _html_block)
    md.add_render_rule("html_inline", _html_inline)
    md.add_render_rule("link_open", _link_open)
    return md


_MD = _renderer()


def sanitise(fragment: str) -> str:
    """``fragment`` with only the allowed tags, attributes, classes and URL schemes left."""
    return nh3.clean(
        fragment,
        tags=TAGS,
        attributes=ATTRIBUTES,
        tag_attribute_values=ATTRIBUTE_VALUES,
        allowed_classes=CLASSES,
        url_schemes=URL_SCHEMES,
        clean_content_tags={"script", "style"},
        filter_style_properties={"text-align"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def render(markdown: str) -> str:
    """Markdown of a lab step (or intro, or finish page) as sanitised HTML."""
    return sanitise(_MD.render(markdown))
