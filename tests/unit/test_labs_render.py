"""Lab markdown renders to sanitised HTML: code blocks carry run or copy, and nothing an author
writes can put a script, an event handler or a javascript: link on the page."""

from __future__ import annotations

from playground.labs.render import render, sanitise


def test_a_fence_marked_run_becomes_a_run_block_and_any_other_block_a_copy_block() -> None:
    page = render("```sh run\nls -l /proc/self/ns\n```\n\n```\ncat <file>\n```\n\n    indented\n")
    assert (
        '<div class="lab-code" data-action="run"><pre><code class="language-sh">ls -l /proc/self/ns\n'
        "</code></pre></div>"
    ) in page
    assert '<div class="lab-code" data-action="copy"><pre><code>cat &lt;file&gt;\n</code></pre></div>' in page
    assert '<div class="lab-code" data-action="copy"><pre><code>indented\n' in page


def test_the_word_run_in_the_code_itself_does_not_make_a_block_runnable() -> None:
    assert 'data-action="copy"' in render("```sh\nrun this\n```\n")
    assert 'data-action="run"' in render("```run\nls\n```\n")


def test_a_script_tag_in_a_step_is_shown_as_text_not_run() -> None:
    page = render("Hello <script>alert(1)</script>\n\n<script>\nalert(2)\n</script>\n")
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_raw_html_with_an_event_handler_is_escaped() -> None:
    page = render('<img src="x" onerror="alert(1)">\n\n<div onclick="alert(2)">hi</div>\n')
    assert "<img" not in page
    assert "<div onclick" not in page
    assert "&lt;img" in page


def test_a_javascript_link_is_not_a_link() -> None:
    page = render("[click](javascript:alert(1)) and [ok](https://example.org)\n")
    assert 'href="javascript' not in page
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow">ok</a>' in page


def test_the_sanitiser_keeps_only_known_tags_attributes_classes_and_actions() -> None:
    dirty = (
        '<div class="lab-code evil" data-action="rm -rf" onclick="x">a</div><iframe src="https://x"></iframe>'
        '<a href="javascript:alert(1)">b</a><style>body{}</style><p style="position:fixed">c</p>'
    )
    assert sanitise(dirty) == '<div class="lab-code">a</div><a rel="noopener noreferrer nofollow">b</a><p>c</p>'


def test_tables_keep_their_alignment_only() -> None:
    page = render("| a | b |\n|---|:-:|\n| 1 | 2 |\n")
    assert '<td style="text-align:center">2</td>' in page


def test_a_run_block_may_name_the_node_it_types_into() -> None:
    assert '<div class="lab-code" data-action="run" data-node="node2"><pre>' in render("```sh run node2\nls\n```\n")
    assert '<div class="lab-code" data-action="run" data-node="node3"><pre>' in render("```run node3\nls\n```\n")
    assert "data-node" not in render("```sh node2 run\nls\n```\n")  # named before run: not a target
    assert "data-node" not in render("```sh copy node2\nls\n```\n")  # a copy block has no node
    assert "data-node" not in render("```sh run node0\nls\n```\n")


def test_the_sanitiser_keeps_only_node_names_as_targets() -> None:
    assert sanitise('<div class="lab-code" data-action="run" data-node="node5">a</div>') == (
        '<div class="lab-code" data-action="run" data-node="node5">a</div>'
    )
    assert sanitise('<div class="lab-code" data-node="javascript:x">a</div>') == '<div class="lab-code">a</div>'


def test_details_summary_and_br_are_kept_bare_and_any_other_raw_html_shown_as_text() -> None:
    page = render(
        '<details open onclick="alert(1)">\n<summary class="x">Solution</summary>\n\n'
        "`rm -rf /tmp/x`<br/>done <b>bold</b>\n\n</details>\n\n<div>\n*hi*\n</div>\n"
    )
    assert page.startswith("<details>\n<summary>Solution</summary>\n<p><code>rm -rf /tmp/x</code><br>done")
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "</details>" in page
    assert "open" not in page and "onclick" not in page and "class=" not in page
    assert "<p>&lt;div&gt;\n*hi*\n&lt;/div&gt;</p>" in page


def test_a_port_link_names_its_port_and_node_and_nothing_else_passes_as_one() -> None:
    page = render("[web](port:node2:8080), [here](port:80), [no](port:node1:70000), [no](port:node0:80)\n")
    assert '<a class="lab-port" href="#" data-port="8080" data-node="node2"' in page
    assert '<a class="lab-port" href="#" data-port="80" rel=' in page
    assert page.count("lab-port") == 2
    assert "70000" not in page and "node0" not in page
    assert sanitise('<a class="lab-port x" data-port="0" data-node="node1">a</a>') == (
        '<a class="lab-port" data-node="node1" rel="noopener noreferrer nofollow">a</a>'
    )
