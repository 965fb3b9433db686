// Putting a lab's HTML on the page safely, and the "run" and "copy" buttons of its code blocks.
//
// The server sends HTML it already sanitised (playground/labs/render.py); this is the second
// wall: the HTML is parsed in an inert document (no script runs, nothing loads there) and rebuilt
// into the page from an allowlist of elements and attributes. Scripts, styles, frames, event
// handlers and non-http(s) links never reach the page. Output of checks is never HTML at all:
// it is shown with textContent.

const DROP_WITH_CONTENT = new Set(['SCRIPT', 'STYLE', 'IFRAME', 'OBJECT', 'EMBED', 'TEMPLATE', 'NOSCRIPT',
  'SVG', 'MATH', 'FORM', 'INPUT', 'BUTTON', 'TEXTAREA', 'SELECT', 'LINK', 'META', 'BASE', 'FRAME', 'FRAMESET']);
const TAGS = new Set(['P', 'BR', 'HR', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'UL', 'OL', 'LI', 'STRONG', 'EM',
  'B', 'I', 'U', 'S', 'DEL', 'INS', 'SUP', 'SUB', 'CODE', 'PRE', 'KBD', 'SAMP', 'BLOCKQUOTE', 'A', 'IMG',
  'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD', 'DIV', 'SPAN', 'DL', 'DT', 'DD', 'DETAILS', 'SUMMARY']);
const ATTRIBUTES = {
  A: ['href', 'title', 'class', 'data-node', 'data-port'],
  IMG: ['src', 'alt', 'title', 'width', 'height'],
  DIV: ['class', 'data-action', 'data-node'],
  CODE: ['class'],
  SPAN: ['class'],
  PRE: ['class'],
  TH: ['colspan', 'rowspan', 'align'],
  TD: ['colspan', 'rowspan', 'align'],
  OL: ['start'],
};
const URL_ATTRIBUTES = new Set(['href', 'src']);
// Attributes of a port link (`a.lab-port`) kept only with these values.
const LINK_VALUES = { class: /^lab-port$/, 'data-node': /^node[1-9][0-9]?$|^node100$/, 'data-port': /^[1-9][0-9]{0,4}$/ };

function safeUrl(value, base) {
  try {
    const url = new URL(value, base);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

function rebuild(source, doc, base) {
  const out = doc.createDocumentFragment();
  for (const node of source.childNodes) {
    if (node.nodeType === 3) {
      out.append(doc.createTextNode(node.nodeValue));
      continue;
    }
    if (node.nodeType !== 1) continue;
    const tag = node.tagName.toUpperCase();
    if (DROP_WITH_CONTENT.has(tag)) continue;
    if (!TAGS.has(tag)) {
      out.append(rebuild(node, doc, base)); // unknown element: keep its text, not the element
      continue;
    }
    const el = doc.createElement(tag.toLowerCase());
    for (const name of ATTRIBUTES[tag] || []) {
      if (!node.hasAttribute(name)) continue;
      let value = node.getAttribute(name);
      if (URL_ATTRIBUTES.has(name)) value = safeUrl(value, base);
      if (tag === 'A' && LINK_VALUES[name] && !LINK_VALUES[name].test(value)) value = null;
      if (value !== null) el.setAttribute(name, value);
    }
    if (tag === 'A') el.setAttribute('rel', 'noopener noreferrer nofollow');
    if (tag === 'A' && !el.classList.contains('lab-port')) el.setAttribute('target', '_blank');
    el.append(rebuild(node, doc, base));
    out.append(el);
  }
  return out;
}

/** Replace `target`'s content with the allowed part of `html`. */
export function setSafeHtml(target, html) {
  const doc = target.ownerDocument;
  const inert = new DOMParser().parseFromString(`<!doctype html><body>${html || ''}`, 'text/html');
  target.replaceChildren(rebuild(inert.body, doc, doc.baseURI));
}

/**
 * Make each port link (`a.lab-port[data-port]`, from a `port:[nodeN:]PORT` link of the lab's
 * markdown) call `open(port, node)` (`node`: its `data-node`, or null for the node on screen).
 */
export function addPortLinks(container, open) {
  for (const link of container.querySelectorAll('a.lab-port[data-port]')) {
    link.addEventListener('click', (event) => {
      event.preventDefault();
      open(Number(link.dataset.port), link.dataset.node || null);
    });
  }
}

/** The command of a code block: its text without the final newline. */
export function commandOf(block) {
  const code = block.querySelector('code') || block;
  return code.textContent.replace(/\n+$/, '');
}

/**
 * Give each code block (`div.lab-code[data-action]`) its button: "run" calls `run(command, node)`
 * (`node`: the block's `data-node`, e.g. "node2", or null for the terminal on screen), "copy"
 * puts the command on the clipboard and calls `copied(ok)`.
 */
export function addCodeButtons(container, { run, copied, words }) {
  for (const block of container.querySelectorAll('div.lab-code')) {
    const action = block.dataset.action === 'run' ? 'run' : 'copy';
    const button = container.ownerDocument.createElement('button');
    button.type = 'button';
    button.className = `btn btn-secondary lab-${action}`;
    const node = action === 'run' ? block.dataset.node || null : null;
    button.textContent = action === 'run' ? (node ? `${words.run} · ${node}` : words.run) : words.copy;
    button.setAttribute('aria-label', `${button.textContent}: ${commandOf(block).slice(0, 80)}`);
    button.addEventListener('click', async () => {
      const command = commandOf(block);
      if (action === 'run') {
        run(command, node);
        return;
      }
      let ok = false;
      try {
        await navigator.clipboard.writeText(command);
        ok = true;
      } catch {
        ok = false;
      }
      copied(ok, command);
    });
    block.append(button);
  }
}
