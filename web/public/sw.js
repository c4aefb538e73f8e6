// Salon's service worker: only for notifications. Where a page may not
// construct a Notification itself (Chrome on Android), the page shows it
// through this worker's registration (src/notify.ts); a click on it
// brings a window of the client to the room. It caches nothing and
// intercepts no request.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const roomId = event.notification.data && event.notification.data.roomId;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const win = windows[0];
      if (win) {
        if (roomId) win.postMessage({ type: "salon.openRoom", roomId });
        return win.focus();
      }
      return self.clients.openWindow(roomId ? `/#/room/${encodeURIComponent(roomId)}` : "/");
    }),
  );
});
