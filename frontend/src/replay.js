// Entry of the recordings page (playground/workshops/templates/workshops/recordings.html), its own
// bundle (dist/replay.js and dist/replay.css): asciinema-player for every element with a
// data-cast attribute, the address of an asciicast v2 recording on this site. The recording is
// fetched (with the page's cookies) only when its player is started; its markers (lab steps,
// checks, "output dropped") show on the progress bar.

import 'asciinema-player/dist/bundle/asciinema-player.css';
import { create } from 'asciinema-player';

/** Make a player in each [data-cast] element of `doc`; returns how many. */
export function mountPlayers(doc) {
  const places = [...doc.querySelectorAll('[data-cast]')];
  for (const place of places) {
    create(place.dataset.cast, place, { fit: 'width', idleTimeLimit: 2, preload: false });
  }
  return places.length;
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', () => mountPlayers(document), { once: true });
} else {
  mountPlayers(document);
}
