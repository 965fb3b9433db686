// "Download your work": every link marked `data-home-download` on the session page (in the
// session-ending warning's banner and in the node tools) points at the session's home.tar, a
// tar of /root on node1 (GET /api/sessions/<id>/home.tar, the session's cookie authorises it).

/** The address of the session's home directory as a tar. */
export function homeTarUrl(sessionId) {
  return `/api/sessions/${encodeURIComponent(sessionId)}/home.tar`;
}

/** Point the page's "Download your work" links at session `sessionId`'s home.tar, and show them. */
export function linkHomeDownloads(doc, sessionId) {
  if (!sessionId) return;
  for (const link of doc.querySelectorAll('[data-home-download]')) {
    link.href = homeTarUrl(sessionId);
    link.hidden = false;
  }
}
