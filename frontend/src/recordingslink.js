// A workshop learner's link to the recordings of their terminals (docs/workshops.md, Recordings):
// the session JSON's `workshop.recordings` is the page that replays them. Made once, in the top
// bar before End session, opening in a new tab so the terminal stays where it is.

import { element } from './dom.js';
import { t } from './i18n.js';

/** Put the link in `doc` for `workshop` (the session JSON's part); nothing without one. Returns the link or null. */
export function showRecordingsLink(doc, workshop) {
  if (!workshop || !workshop.recordings) return null;
  const existing = doc.getElementById('recordings-link');
  if (existing) return existing;
  const link = element(doc, 'a', {
    id: 'recordings-link',
    className: 'btn btn-secondary',
    text: t('recording.open'),
    attrs: { href: workshop.recordings, target: '_blank', rel: 'noopener' },
  });
  const anchor = doc.getElementById('end-session');
  if (anchor) anchor.before(link);
  else doc.body.append(link);
  return link;
}
