// Why a module or a worker script did not load, when its server can say: walks the script and the
// modules it imports (static `import ... from '...'` lines), fetching each, and names the first
// one that answers with an error status. Browsers do not tell: a failed module graph rejects with
// "Failed to fetch dynamically imported module: <the top module>" (Chromium), or with no URL at
// all (WebKit), and a worker whose script is missing gets a bare `error` event.
// No imports of its own, so that it loads whatever else is missing.

const MAX_MODULES = 40;

/** `"page/gallery.js (imported by app.js): HTTP 404 for URL"`, or null when every module answers
 *  (the failure was elsewhere: a module that threw, the network). */
export async function missingModule(url) {
  const seen = new Set([url]);
  const queue = [{ url, by: null }];
  const name = (u) => {
    const p = new URL(u);
    return p.origin === location.origin ? p.pathname.replace(/^\//, '') : p.href;
  };
  while (queue.length && seen.size <= MAX_MODULES) {
    const { url: next, by } = queue.shift();
    const res = await fetch(next, { cache: 'no-store' }).catch(() => null);
    if (!res) return null; // the network: the browser's own message says more
    if (!res.ok) return `${name(next)}${by ? ` (imported by ${name(by)})` : ''}: HTTP ${res.status} for ${next}`;
    const source = await res.text().catch(() => '');
    for (const [, spec] of source.matchAll(/^\s*(?:import|export)\s[^;]*?from\s*['"]([^'"]+)['"]/gm)) {
      const dep = new URL(spec, next).href;
      if (!seen.has(dep)) { seen.add(dep); queue.push({ url: dep, by: next }); }
    }
  }
  return null;
}
