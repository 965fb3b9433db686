// The session registry's panel (docs/registry.md, Pushing): where this session's nodes push their
// images, and the login the session API gives its visitor, each with a copy button. The login
// line is what a visitor pastes into a node's terminal.

import { copyText } from './comfort.js';
import { t } from './i18n.js';

/** The `docker login` line for `registry` (the session API's `registry` part). */
export function loginCommand(registry) {
  return `echo ${registry.password} | docker login ${registry.address} -u ${registry.user} --password-stdin`;
}

/** The panel's values by the name its elements carry (`registry-<name>`, `data-copy="<name>"`). */
export function registryValues(registry) {
  return {
    address: registry.address,
    user: registry.user,
    password: registry.password,
    login: loginCommand(registry),
  };
}

/** Fills and shows `#registry-panel` of `doc` for `registry`; nothing when either is missing. */
export function showRegistry(doc, registry, toaster, store) {
  const panel = doc.getElementById('registry-panel');
  if (!panel || !registry) return;
  const values = registryValues(registry);
  for (const [name, value] of Object.entries(values)) {
    const code = doc.getElementById(`registry-${name}`);
    if (code) code.textContent = value;
  }
  const hint = doc.getElementById('registry-hint');
  if (hint) hint.textContent = t('registry.hint', { prefix: registry.prefix });
  for (const button of panel.querySelectorAll('[data-copy]')) {
    store.listen(button, 'click', async () => {
      const what = button.dataset.what || '';
      const ok = await copyText(values[button.dataset.copy], doc);
      toaster.show(ok ? t('registry.copied', { what }) : t('registry.copy_failed'), {
        kind: ok ? 'info' : 'warning',
        timeoutMs: 2500,
      });
    });
  }
  panel.hidden = false;
}
