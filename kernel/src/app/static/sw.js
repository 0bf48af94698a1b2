// clawos app service worker: keeps the app shell for an offline start.
// Network first, so a new version shows as soon as the Gateway is reachable.
const CACHE = "clawos-app-v1";
const SHELL = ["/app", "/app/app.js", "/app/app.css", "/app/manifest.webmanifest", "/app/icon.svg"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  // /app, /app/ and /app/index.html are all the index page.
  const path = ["/app/", "/app/index.html"].includes(url.pathname) ? "/app" : url.pathname;
  if (!SHELL.includes(path)) return; // the API, /ws and anything else: straight to the network
  event.respondWith(
    fetch(req)
      .then((res) => {
        if (res.ok && !res.redirected) {
          const copy = res.clone();
          event.waitUntil(caches.open(CACHE).then((c) => c.put(path, copy)));
        }
        return res;
      })
      .catch(() => caches.match(path).then((hit) => hit || Response.error())),
  );
});
