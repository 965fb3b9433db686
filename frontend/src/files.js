// Files in and out of a node (docs/files.md): a file dropped on the terminal, or picked with
// Upload, goes to the node with `PUT .../files/?path=<its name>&terminal=<n>` (into that
// terminal's current directory), with its progress and then the API's answer in the transfer
// line over the terminal; Download fetches `GET .../files/?path=<path>` and saves it.

import { changeHeaders } from './api.js';
import { setShown, setText } from './dom.js';
import { downloadName, filesUrl, progressMessage, transferError, uploadedMessage } from './nodemodel.js';
import { t } from './i18n.js';

const DONE_SHOWN_MS = 10000;

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Sends `file` as the body of `PUT url` with XMLHttpRequest (fetch() tells nothing of an upload's
 * progress). `onProgress(loaded, total)`; resolves `{status, body}` (`status` 0: no answer).
 */
export function putFile(url, file, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    for (const [name, value] of Object.entries(changeHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.addEventListener('progress', (event) => {
      onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    });
    xhr.addEventListener('load', () => resolve({ status: xhr.status, body: parseJson(xhr.responseText) }));
    xhr.addEventListener('error', () => resolve({ status: 0, body: null }));
    xhr.addEventListener('abort', () => resolve({ status: 0, body: null }));
    xhr.send(file);
  });
}

/**
 * The page's file transfers. `target()` = `{node, terminal}`: the node and terminal on screen;
 * `els`: `dropArea` (the terminals' area), `status`, `statusText`, `progress`, `statusClose`,
 * `uploadButton`, `fileInput`, `downloadForm`, `downloadPath`.
 */
export function createFiles({ doc, sessionId, target, els, store }) {
  let hideTimer = 0;
  let busy = false;
  const queue = [];

  function show(text, kind, progress = null) {
    clearTimeout(hideTimer);
    setText(els.statusText, text);
    els.status.dataset.kind = kind;
    setShown(els.progress, progress !== null);
    if (progress !== null) els.progress.value = progress;
    setShown(els.status, true);
    if (kind === 'done') hideTimer = setTimeout(() => setShown(els.status, false), DONE_SHOWN_MS);
  }

  async function uploadOne(file) {
    const { node, terminal } = target();
    show(progressMessage(file.name, 0, file.size), 'busy', 0);
    const url = filesUrl(sessionId, node, file.name, terminal);
    const { status, body } = await putFile(url, file, (loaded, total) => {
      show(progressMessage(file.name, loaded, total), 'busy', total ? loaded / total : 0);
    });
    if (status === 201) show(uploadedMessage(file.name, body), 'done');
    else show(`${file.name}: ${transferError(status, body)}`, 'error');
  }

  /** Uploads `files` one after the other (a drop of several, or a second drop during the first). */
  async function upload(files) {
    queue.push(...files);
    if (busy) return;
    busy = true;
    while (queue.length && !store.disposed) await uploadOne(queue.shift());
    busy = false;
  }

  async function download(path) {
    const { node } = target();
    show(t('files.downloading', { path }), 'busy');
    let response;
    try {
      response = await fetch(filesUrl(sessionId, node, path), { credentials: 'same-origin' });
    } catch {
      show(transferError(0, null), 'error');
      return;
    }
    if (!response.ok) {
      const body = parseJson(await response.text());
      show(`${path}: ${transferError(response.status, body)}`, 'error');
      return;
    }
    const blob = await response.blob();
    const link = doc.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = downloadName(path);
    doc.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    show(t('files.downloaded', { path, node }), 'done');
  }

  const carriesFiles = (event) => Array.from(event.dataTransfer?.types || []).includes('Files');
  store.listen(els.dropArea, 'dragover', (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    els.dropArea.classList.add('is-dropping');
  });
  store.listen(els.dropArea, 'dragleave', (event) => {
    if (!els.dropArea.contains(event.relatedTarget)) els.dropArea.classList.remove('is-dropping');
  });
  store.listen(els.dropArea, 'drop', (event) => {
    els.dropArea.classList.remove('is-dropping');
    const files = Array.from(event.dataTransfer?.files || []);
    if (!files.length) return;
    event.preventDefault();
    upload(files);
  });
  store.listen(els.uploadButton, 'click', () => els.fileInput.click());
  store.listen(els.fileInput, 'change', () => {
    const files = Array.from(els.fileInput.files || []);
    els.fileInput.value = '';
    if (files.length) upload(files);
  });
  store.listen(els.downloadForm, 'submit', (event) => {
    event.preventDefault();
    const path = els.downloadPath.value.trim();
    if (path) download(path);
  });
  store.listen(els.statusClose, 'click', () => setShown(els.status, false));
  store.add(() => clearTimeout(hideTimer));

  return { upload, download };
}
