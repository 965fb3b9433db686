// The lab panel of the session page: a session started with a lab gets its steps on the left
// (progress, the step's text with run/copy buttons, Check, previous/next, skip to step N, and
// the finish page) and the terminal on the right, with a draggable, keyboard-resizable split.
//
// "Run" types the command into the active terminal through xterm's own input path
// (term.input), exactly as if the reader had typed it. Check results and their output are
// shown as text only.

import { apiRequest, getSession } from './api.js';
import { addCodeButtons, addPortLinks, setSafeHtml } from './labhtml.js';
import { portUrl } from './nodemodel.js';

export const WORDS = {
  en: {
    panel: 'Lab',
    step: (n, total) => `Step ${n} of ${total}`,
    passedCount: (k, total) => `${k} of ${total} passed`,
    readCount: (k) => `${k} read`,
    check: 'Check',
    checking: 'Checking…',
    passed: (n) => `Step ${n} passed.`,
    notYet: 'Not yet. What the check found:',
    timedOut: 'The check did not finish within its time limit and was stopped.',
    truncated: 'The check printed too much and was stopped; its output below is cut.',
    nothingToCheck: 'This step has nothing to check: it counts as read.',
    prev: 'Previous',
    next: 'Next',
    finish: 'Finish',
    skipTo: 'Skip to step',
    skip: 'Skip',
    skipping: (n) => `Doing the steps before step ${n} for you…`,
    skipped: (list) => (list.length ? `Done for you: step ${list.join(', ')}.` : 'Nothing to do: the earlier steps had passed.'),
    setupFailed: 'This step could not be prepared:',
    run: 'Run',
    copy: 'Copy',
    copied: 'Copied to the clipboard.',
    copyFailed: 'Could not copy; select the text and copy it yourself.',
    finishedTitle: 'Lab complete',
    backToLabs: 'Back to labs',
    reviewSteps: 'Review the steps',
    resize: 'Resize the lab panel',
    waiting: 'Waiting for the sandbox…',
    error: 'Something went wrong; please try again.',
    pushed: (n) => `Your instructor moved the class to step ${n}.`,
  },
  ko: {
    panel: '실습',
    step: (n, total) => `${total}단계 중 ${n}단계`,
    passedCount: (k, total) => `${total}단계 중 ${k}단계 통과`,
    readCount: (k) => `${k}단계 읽음`,
    check: '확인',
    checking: '확인하는 중…',
    passed: (n) => `${n}단계를 통과했습니다.`,
    notYet: '아직입니다. 확인 결과:',
    timedOut: '확인 스크립트가 제한 시간 안에 끝나지 않아 중단되었습니다.',
    truncated: '확인 스크립트의 출력이 너무 많아 중단되었습니다. 아래 출력은 잘린 것입니다.',
    nothingToCheck: '이 단계에는 확인할 것이 없어 읽은 단계로 셉니다.',
    prev: '이전',
    next: '다음',
    finish: '마치기',
    skipTo: '건너뛸 단계',
    skip: '건너뛰기',
    skipping: (n) => `${n}단계 이전의 단계들을 대신 실행하는 중…`,
    skipped: (list) => (list.length ? `대신 완료한 단계: ${list.join(', ')}.` : '할 일이 없습니다. 이전 단계는 이미 통과했습니다.'),
    setupFailed: '이 단계를 준비하지 못했습니다:',
    run: '실행',
    copy: '복사',
    copied: '클립보드에 복사했습니다.',
    copyFailed: '복사하지 못했습니다. 직접 선택해서 복사하세요.',
    finishedTitle: '실습 완료',
    backToLabs: '실습 목록으로',
    reviewSteps: '단계 다시 보기',
    resize: '실습 패널 크기 조절',
    waiting: '샌드박스를 기다리는 중…',
    error: '문제가 생겼습니다. 다시 시도하세요.',
    pushed: (n) => `강사가 수업을 ${n}단계로 옮겼습니다.`,
  },
};

const WIDTH_KEY = 'playground.labWidth';
const MIN_WIDTH = 20; // percent of the window
const MAX_WIDTH = 70;

function el(doc, tag, attrs = {}, text = '') {
  const node = doc.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

/** The split between the panel and the terminal: drag it, or focus it and use the arrow keys. */
export function createSplit(layout, splitter, words, onChange) {
  const clamp = (value) => Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, Math.round(value)));
  let width = clamp(Number(localStorage.getItem(WIDTH_KEY)) || 40);
  function set(value) {
    width = clamp(value);
    layout.style.setProperty('--lab-width', `${width}%`);
    splitter.setAttribute('aria-valuenow', String(width));
    try {
      localStorage.setItem(WIDTH_KEY, String(width));
    } catch {
      /* private mode */
    }
    onChange();
  }
  splitter.setAttribute('role', 'separator');
  splitter.setAttribute('aria-orientation', 'vertical');
  splitter.setAttribute('aria-label', words.resize);
  splitter.setAttribute('aria-valuemin', String(MIN_WIDTH));
  splitter.setAttribute('aria-valuemax', String(MAX_WIDTH));
  splitter.tabIndex = 0;
  splitter.addEventListener('pointerdown', (event) => {
    event.preventDefault();
    splitter.setPointerCapture(event.pointerId);
    layout.classList.add('is-resizing');
  });
  splitter.addEventListener('pointermove', (event) => {
    if (!splitter.hasPointerCapture(event.pointerId)) return;
    const box = layout.getBoundingClientRect();
    set(((event.clientX - box.left) / box.width) * 100);
  });
  const release = (event) => {
    if (splitter.hasPointerCapture(event.pointerId)) splitter.releasePointerCapture(event.pointerId);
    layout.classList.remove('is-resizing');
  };
  splitter.addEventListener('pointerup', release);
  splitter.addEventListener('pointercancel', release);
  splitter.addEventListener('keydown', (event) => {
    const moves = { ArrowLeft: width - 5, ArrowRight: width + 5, Home: MIN_WIDTH, End: MAX_WIDTH };
    if (!(event.key in moves)) return;
    event.preventDefault();
    set(moves[event.key]);
  });
  set(width);
  return { get width() { return width; }, set };
}

function labRequest(sessionId, path, body) {
  return apiRequest(`/api/sessions/${encodeURIComponent(sessionId)}/lab/${path}`, { method: 'POST', body });
}

/** Mount the lab panel if the session was started with a lab. `api` is session.js's window.playground. */
export async function initLabPanel(doc, api, known = null) {
  const sessionId = api.sessionId;
  if (!sessionId) return null;
  const session = known ? { ok: true, data: known } : await getSession(sessionId);
  if (!session.ok || !session.data || !session.data.lab) return null;
  const progress = session.data.lab;
  const detail = await apiRequest(
    `/api/labs/${encodeURIComponent(progress.slug)}/?language=${encodeURIComponent(progress.language)}`,
  );
  if (!detail.ok || !detail.data) return null;
  return mountPanel(doc, api, detail.data, progress);
}

function mountPanel(doc, api, lab, initial) {
  const words = WORDS[lab.language] || WORDS.en;
  const steps = lab.steps;
  const total = steps.length;
  const state = {
    current: initial.current,
    passed: new Set(initial.passed),
    read: new Set(initial.read || []), // passed steps without a check: read, not checked
    finished: initial.finished,
    busy: false,
  };

  // ---- layout: [panel | splitter | terminal] --------------------------------------------------
  const main = doc.querySelector('main.term-area') || doc.querySelector('main');
  const layout = el(doc, 'div', { class: 'lab-layout', id: 'lab-layout' });
  main.before(layout);
  const panel = el(doc, 'aside', { id: 'lab-panel', class: 'lab-panel', lang: lab.language, 'aria-label': words.panel });
  const splitter = el(doc, 'div', { id: 'lab-splitter', class: 'lab-splitter' });
  layout.append(panel, splitter, main);
  doc.body.classList.add('has-lab');
  createSplit(layout, splitter, words, () => api.fit && api.fit());

  const head = el(doc, 'div', { class: 'lab-head' });
  const title = el(doc, 'h2', { class: 'lab-title' }, lab.title);
  const bar = el(doc, 'div', { class: 'lab-progress', role: 'progressbar', 'aria-valuemin': '0',
    'aria-valuemax': String(total) });
  const fill = el(doc, 'div', { class: 'lab-progress-fill' });
  bar.append(fill);
  const where = el(doc, 'p', { id: 'lab-where', class: 'lab-where' });
  head.append(title, bar, where);

  const stepView = el(doc, 'article', { id: 'lab-step', class: 'lab-step' });
  const stepTitle = el(doc, 'h3', { id: 'lab-step-title', class: 'lab-step-title' });
  const stepHtml = el(doc, 'div', { id: 'lab-step-html', class: 'lab-html' });
  stepView.append(stepTitle, stepHtml);

  const result = el(doc, 'div', { id: 'lab-result', class: 'lab-result', role: 'status', 'aria-live': 'polite' });
  const resultMessage = el(doc, 'p', { id: 'lab-result-message', class: 'lab-result-message' });
  const resultOutput = el(doc, 'pre', { id: 'lab-result-output', class: 'lab-result-output' });
  result.append(resultMessage, resultOutput);
  result.hidden = true;

  const actions = el(doc, 'div', { class: 'lab-actions' });
  const prev = el(doc, 'button', { id: 'lab-prev', type: 'button', class: 'btn btn-secondary' }, words.prev);
  const check = el(doc, 'button', { id: 'lab-check', type: 'button', class: 'btn btn-primary' }, words.check);
  const next = el(doc, 'button', { id: 'lab-next', type: 'button', class: 'btn btn-secondary' }, words.next);
  actions.append(prev, check, next);

  const skipBox = el(doc, 'div', { class: 'lab-skip' });
  const skipLabel = el(doc, 'label', { for: 'lab-skip-to' }, words.skipTo);
  const skipTo = el(doc, 'select', { id: 'lab-skip-to' });
  for (const step of steps) skipTo.append(el(doc, 'option', { value: String(step.number) }, `${step.number}. ${step.title}`));
  const skipButton = el(doc, 'button', { id: 'lab-skip', type: 'button', class: 'btn btn-secondary' }, words.skip);
  skipBox.append(skipLabel, skipTo, skipButton);

  const finishView = el(doc, 'section', { id: 'lab-finish', class: 'lab-finish' });
  finishView.hidden = true;
  const finishTitle = el(doc, 'h3', {}, words.finishedTitle);
  const finishHtml = el(doc, 'div', { class: 'lab-html' });
  setSafeHtml(finishHtml, lab.finish_html);
  const back = el(doc, 'a', { href: '/labs/', class: 'btn btn-primary', id: 'lab-back' }, words.backToLabs);
  const review = el(doc, 'button', { type: 'button', class: 'btn btn-secondary', id: 'lab-review' }, words.reviewSteps);
  finishView.append(finishTitle, finishHtml, back, review);

  const work = el(doc, 'div', { class: 'lab-work' });
  work.append(stepView, result, actions, skipBox);
  panel.append(head, work, finishView);

  // ---- behaviour ----------------------------------------------------------------------------
  /** Type `command` into the terminal on screen, or into node `node`'s (shown first) when named. */
  function typeCommand(command, node = null) {
    const nodes = window.playground && window.playground.nodes;
    if (node && nodes && nodes.current() !== node) {
      nodes.select(node); // says so when the node is not running (yet)
      if (nodes.current() !== node) return;
    }
    const term = (window.playground && window.playground.term) || api.term;
    term.focus();
    term.input(command.replace(/\r?\n/g, '\r') + '\r');
  }

  /** Open `port` of node `node` (else of the node on screen) in a new tab, through its port link. */
  async function openPort(port, node) {
    const nodes = window.playground && window.playground.nodes;
    const name = node || (nodes && nodes.current()) || 'node1';
    const tab = window.open('', '_blank'); // opened now, while the click still allows it
    const reply = await apiRequest(portUrl(api.sessionId, name, port));
    if (reply.ok && reply.data && reply.data.open_url && tab) {
      tab.opener = null;
      tab.location.href = reply.data.open_url;
      return;
    }
    if (tab) tab.close();
    showResult('failed', reply.message || words.error);
  }

  function showResult(kind, message, output = '') {
    result.hidden = false;
    result.dataset.state = kind;
    resultMessage.textContent = message;
    resultOutput.textContent = output;
    resultOutput.hidden = !output;
    result.scrollIntoView?.({ block: 'nearest' }); // above Previous, Check and Next, which stay in view
  }

  function renderProgress() {
    const done = state.passed.size;
    fill.style.width = `${total ? (done / total) * 100 : 0}%`;
    bar.setAttribute('aria-valuenow', String(done));
    bar.setAttribute('aria-valuetext', words.passedCount(done, total));
    const counts = [words.step(state.current, total), words.passedCount(done - state.read.size, total)];
    if (state.read.size) counts.push(words.readCount(state.read.size));
    where.textContent = counts.join(' · ');
  }

  function renderStep() {
    const step = steps[state.current - 1];
    stepTitle.textContent = `${step.number}. ${step.title}`;
    setSafeHtml(stepHtml, step.html);
    addCodeButtons(stepHtml, {
      run: typeCommand,
      copied: (ok) => showResult(ok ? 'info' : 'failed', ok ? words.copied : words.copyFailed),
      words,
    });
    addPortLinks(stepHtml, openPort);
    panel.dataset.step = String(step.number);
    prev.disabled = state.current <= 1;
    const last = state.current >= total;
    next.textContent = last ? words.finish : words.next;
    next.disabled = last && !state.passed.has(total);
    skipTo.value = String(Math.min(total, state.current + 1));
    result.hidden = true;
    renderProgress();
    work.scrollTop = 0; // a new step starts at its top
  }

  function showFinish(finished) {
    work.hidden = finished;
    finishView.hidden = !finished;
    panel.dataset.finished = finished ? 'true' : 'false';
    renderProgress();
  }

  function update(labState) {
    if (!labState) return;
    state.current = labState.current;
    state.passed = new Set(labState.passed);
    state.read = new Set(labState.read || []);
    state.finished = labState.finished;
  }

  async function busy(button, text, work) {
    if (state.busy) return;
    state.busy = true;
    const label = button.textContent;
    for (const b of [prev, check, next, skipButton]) b.disabled = true;
    button.textContent = text;
    button.setAttribute('aria-busy', 'true');
    try {
      await work();
    } finally {
      state.busy = false;
      button.textContent = label;
      button.removeAttribute('aria-busy');
      check.disabled = false;
      skipButton.disabled = false;
      renderNavigation();
    }
  }

  function renderNavigation() {
    prev.disabled = state.current <= 1;
    next.disabled = state.current >= total && !state.passed.has(total);
  }

  /** Open step `number` (its setup runs); `typeForeground` types its foreground command. */
  async function open(number, typeForeground) {
    for (let attempt = 0; attempt < 30; attempt++) {
      const reply = await labRequest(api.sessionId, `steps/${number}/open/`);
      if (reply.status === 409 && reply.error === 'not_ready') {
        showResult('info', words.waiting);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      if (!reply.ok) {
        showResult('failed', reply.message || words.error);
        return false;
      }
      update(reply.data.lab);
      state.current = number;
      renderStep();
      const setup = reply.data.setup;
      if (setup && !setup.ok) showResult('failed', `${words.setupFailed} ${setup.message}`, setup.output);
      if (typeForeground && reply.data.foreground) typeCommand(reply.data.foreground);
      return true;
    }
    showResult('failed', words.error);
    return false;
  }

  async function runCheck() {
    const number = state.current;
    const reply = await labRequest(api.sessionId, `steps/${number}/check/`);
    if (!reply.ok || !reply.data) {
      showResult('failed', reply.message || words.error);
      return;
    }
    const data = reply.data;
    update(data.lab);
    state.current = number;
    renderProgress();
    if (data.passed) {
      const steppy = steps[number - 1];
      showResult('passed', steppy.has_check ? words.passed(number) : words.nothingToCheck, data.output);
    } else if (data.timed_out) {
      showResult('failed', words.timedOut, data.output);
    } else if (data.truncated) {
      showResult('failed', words.truncated, data.output);
    } else {
      showResult('failed', words.notYet, data.output);
    }
  }

  async function runSkip() {
    const target = Number(skipTo.value);
    showResult('info', words.skipping(target));
    const reply = await labRequest(api.sessionId, 'skip/', { to: target });
    if (!reply.ok || !reply.data) {
      if (reply.data && reply.data.lab) update(reply.data.lab);
      renderProgress();
      showResult('failed', reply.message || words.error, (reply.data && reply.data.output) || '');
      return;
    }
    update(reply.data.lab);
    state.current = target;
    renderStep();
    showResult('info', words.skipped(reply.data.solved));
    const setup = reply.data.setup;
    if (setup && !setup.ok) showResult('failed', `${words.setupFailed} ${setup.message}`, setup.output);
    if (reply.data.foreground) typeCommand(reply.data.foreground);
  }

  /** The instructor moved the class to step `number` (the `lab_step` event): open it once the panel
   * is free (its foreground command is not typed: the learner runs it). */
  async function goTo(number) {
    if (!Number.isInteger(number) || number < 1 || number > total) return;
    while (state.busy) await new Promise((resolve) => setTimeout(resolve, 200));
    showFinish(false);
    await busy(next, words.next, async () => {
      if (await open(number, false)) showResult('info', words.pushed(number));
    });
  }

  check.addEventListener('click', () => busy(check, words.checking, runCheck));
  prev.addEventListener('click', () => busy(prev, words.prev, () => open(state.current - 1, true)));
  next.addEventListener('click', () => {
    if (state.current >= total) {
      if (state.passed.has(total)) showFinish(true);
      return;
    }
    busy(next, words.next, () => open(state.current + 1, true));
  });
  skipButton.addEventListener('click', () => busy(skipButton, words.skip, runSkip));
  review.addEventListener('click', () => showFinish(false));

  renderStep();
  if (state.finished) showFinish(true);
  else {
    const fresh = state.current === 1 && state.passed.size === 0;
    busy(check, words.check, () => open(state.current, fresh));
  }
  const handle = { panel, words, lab, state, typeCommand, goTo };
  api.lab = handle;
  return handle;
}
