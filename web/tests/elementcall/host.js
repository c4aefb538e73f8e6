// A widget host for Element Call, the way a Matrix client embeds it: the
// page signs in with matrix-js-sdk (Rust crypto for encrypted rooms),
// loads the npm package @element-hq/element-call-embedded in an iframe
// with the widget URL parameters, approves the capabilities it asks for,
// and carries out its widget actions (state, to-device, delayed events,
// OpenID, RTC transports) against the homeserver. Events from /sync go the
// other way: room events, state and to-device messages are fed to it.
//
// Scenario 16 (web/tests/16-element-call.test.mjs) builds this with Vite
// and opens it as host.html#?<parameters>:
//   hs         the homeserver's base URL
//   user, token, device  the signed-in session
//   room       the room of the call
//   e2ee       "1": start the crypto and ask Element Call for
//              per-participant encryption
import { ClientEvent, EventType, MatrixEventEvent, RoomStateEvent, createClient } from "matrix-js-sdk";
import { ClientWidgetApi, OpenIDRequestState, Widget, WidgetDriver } from "matrix-widget-api";

const params = new URLSearchParams(location.hash.replace(/^#\??/, ""));
const baseUrl = params.get("hs");
const userId = params.get("user");
const deviceId = params.get("device");
const roomId = params.get("room");
const e2ee = params.get("e2ee") === "1";

// What the scenario reads back: the host's progress and each widget action.
const trace = (window.hostTrace = { actions: [], errors: [], state: "starting", hangups: 0 });
function note(action) {
  trace.actions.push(action);
}

const client = createClient({ baseUrl, accessToken: params.get("token"), userId, deviceId });

/** A MatrixError as the widget API carries it, so Element Call sees the server's errcode. */
function matrixApiError(err) {
  if (!err || typeof err.httpStatus !== "number") return undefined;
  return {
    matrix_api_error: {
      http_status: err.httpStatus,
      http_headers: {},
      url: err.url ?? "",
      response: err.data ?? { errcode: err.errcode, error: err.message },
    },
  };
}

class SalonDriver extends WidgetDriver {
  // A test host approves what Element Call asks for, as Element Web does
  // for its own Element Call widget.
  async validateCapabilities(requested) {
    note({ action: "capabilities", granted: [...requested] });
    return requested;
  }

  async sendEvent(eventType, content, stateKey, targetRoom) {
    const room = targetRoom ?? roomId;
    note({ action: "send_event", type: eventType, state_key: stateKey ?? undefined });
    const res =
      stateKey === null || stateKey === undefined
        ? await client.sendEvent(room, eventType, content)
        : await client.sendStateEvent(room, eventType, content, stateKey);
    return { roomId: room, eventId: res.event_id };
  }

  async sendDelayedEvent(delay, eventType, content, stateKey, targetRoom) {
    const room = targetRoom ?? roomId;
    note({ action: "send_delayed_event", type: eventType, delay, state_key: stateKey ?? undefined });
    const res =
      stateKey === null || stateKey === undefined
        ? await client._unstable_sendDelayedEvent(room, { delay }, null, eventType, content)
        : await client._unstable_sendDelayedStateEvent(room, { delay }, eventType, content, stateKey);
    return { roomId: room, delayId: res.delay_id };
  }

  async cancelScheduledDelayedEvent(delayId) {
    note({ action: "delayed_event", verb: "cancel", delay_id: delayId });
    await client._unstable_cancelScheduledDelayedEvent(delayId);
  }

  async restartScheduledDelayedEvent(delayId) {
    note({ action: "delayed_event", verb: "restart", delay_id: delayId });
    await client._unstable_restartScheduledDelayedEvent(delayId);
  }

  async sendScheduledDelayedEvent(delayId) {
    note({ action: "delayed_event", verb: "send", delay_id: delayId });
    await client._unstable_sendScheduledDelayedEvent(delayId);
  }

  // contentMap: user ID → device ID → content. Encrypted messages are
  // Olm-encrypted for each device by the host's crypto, as Element Web
  // does; identical contents share one encryption call.
  async sendToDevice(eventType, encrypted, contentMap) {
    note({ action: "send_to_device", type: eventType, encrypted });
    if (!encrypted) {
      const batch = [];
      for (const [user, devices] of Object.entries(contentMap)) {
        for (const [device, payload] of Object.entries(devices)) batch.push({ userId: user, deviceId: device, payload });
      }
      await client.queueToDevice({ eventType, batch });
      return;
    }
    const crypto = client.getCrypto();
    if (!crypto) throw new Error("encrypted to-device message without crypto");
    const byContent = new Map();
    for (const [user, devices] of Object.entries(contentMap)) {
      for (const [device, payload] of Object.entries(devices)) {
        const key = JSON.stringify(payload);
        if (!byContent.has(key)) byContent.set(key, []);
        byContent.get(key).push({ userId: user, deviceId: device });
      }
    }
    for (const [key, recipients] of byContent) {
      const batch = await crypto.encryptToDeviceMessages(eventType, recipients, JSON.parse(key));
      await client.queueToDevice(batch);
    }
  }

  async readRoomState(targetRoom, eventType, stateKey) {
    const room = client.getRoom(targetRoom);
    if (!room) return [];
    const state = room.getLiveTimeline().getState("f");
    if (!state) return [];
    if (stateKey === undefined) return state.getStateEvents(eventType).map((e) => e.getEffectiveEvent());
    const ev = state.getStateEvents(eventType, stateKey);
    return ev ? [ev.getEffectiveEvent()] : [];
  }

  async readRoomTimeline(targetRoom, eventType, msgtype, stateKey, limit) {
    const room = client.getRoom(targetRoom);
    if (!room) return [];
    const out = [];
    const events = room.getLiveTimeline().getEvents();
    for (let i = events.length - 1; i >= 0 && out.length < (limit > 0 ? limit : 100); i--) {
      const ev = events[i];
      if (ev.getType() !== eventType) continue;
      if (msgtype !== undefined && ev.getContent().msgtype !== msgtype) continue;
      if (stateKey !== undefined && ev.getStateKey() !== stateKey) continue;
      out.push(ev.getEffectiveEvent());
    }
    return out;
  }

  async readStickyEvents() {
    return [];
  }

  askOpenID(observer) {
    note({ action: "openid" });
    client.getOpenIdToken().then(
      (token) => observer.update({ state: OpenIDRequestState.Allowed, token }),
      (err) => {
        trace.errors.push(`openid: ${err}`);
        observer.update({ state: OpenIDRequestState.Blocked });
      },
    );
  }

  async getRtcTransports() {
    note({ action: "rtc_transports" });
    return { rtc_transports: await client._unstable_getRTCTransports() };
  }

  getKnownRooms() {
    return [roomId];
  }

  processError(err) {
    return matrixApiError(err);
  }
}

async function start() {
  if (e2ee) {
    // A fresh device per page: the keys live in memory only.
    await client.initRustCrypto({ useIndexedDB: false });
  }
  const synced = new Promise((resolve) => {
    client.on(ClientEvent.Sync, (state) => {
      if (state === "PREPARED" || state === "SYNCING") resolve();
    });
  });
  await client.startClient({ initialSyncLimit: 20 });
  await synced;

  const params = new URLSearchParams({
    widgetId: "salon-element-call",
    parentUrl: location.href.split("#")[0],
    userId,
    deviceId,
    roomId,
    baseUrl,
    lang: "en-GB",
    theme: "dark",
    intent: "join_existing",
    perParticipantE2EE: e2ee ? "true" : "false",
    confineToRoom: "true",
    appPrompt: "false",
    hideHeader: "true",
    header: "none",
    returnToLobby: "false",
    preload: "false",
  });
  const url = new URL(`./element-call/index.html#?${params}`, location.href).toString();

  const iframe = document.createElement("iframe");
  iframe.title = "Element Call";
  iframe.allow = "camera; microphone; display-capture; autoplay; clipboard-write";
  document.body.appendChild(iframe);
  const widget = new Widget({
    id: "salon-element-call",
    creatorUserId: userId,
    type: "m.custom",
    url,
    waitForIframeLoad: false,
    data: {},
  });
  const api = new ClientWidgetApi(widget, iframe, new SalonDriver());
  window.widgetApi = api;
  api.on("ready", () => {
    trace.state = "ready";
    api.setViewedRoomId(roomId);
  });
  // Element Call's own actions (Element Web's ElementWidgetActions): it
  // joined, hung up, closes, asks to stay on screen, reports its mute
  // state. A host acknowledges them; this one records them.
  for (const action of ["io.element.join", "im.vector.hangup", "io.element.close", "set_always_on_screen", "io.element.device_mute"]) {
    api.on(`action:${action}`, (ev) => {
      ev.preventDefault();
      note({ action });
      if (action === "im.vector.hangup") trace.hangups++;
      api.transport.reply(ev.detail, {});
      // Closing: the host removes the widget, as Element Web does.
      if (action === "io.element.close") {
        closed = true;
        api.stop();
        iframe.remove();
        trace.state = "closed";
      }
    });
  }

  // Events from the host's sync, fed to the widget (which checks them
  // against the capabilities it was granted).
  let closed = false;
  const feed = (ev) => {
    if (closed || ev.isBeingDecrypted() || ev.isDecryptionFailure()) return;
    api.feedEvent(ev.getEffectiveEvent()).catch((e) => trace.errors.push(`feedEvent: ${e}`));
  };
  client.on(ClientEvent.Event, (ev) => {
    if (ev.getRoomId() !== roomId) return;
    if (ev.isEncrypted() && !ev.getClearContent()) {
      client.decryptEventIfNeeded(ev);
      return; // fed once decrypted
    }
    feed(ev);
  });
  client.on(MatrixEventEvent.Decrypted, (ev) => {
    if (ev.getRoomId() === roomId) feed(ev);
  });
  client.on(RoomStateEvent.Events, (ev) => {
    if (closed || ev.getRoomId() !== roomId) return;
    api.feedStateUpdate(ev.getEffectiveEvent()).catch((e) => trace.errors.push(`feedStateUpdate: ${e}`));
  });
  client.on(ClientEvent.ReceivedToDeviceMessage, ({ message, encryptionInfo }) => {
    if (closed || message.type === EventType.RoomMessageEncrypted) return;
    api.feedToDevice(message, encryptionInfo !== null).catch((e) => trace.errors.push(`feedToDevice: ${e}`));
  });

  iframe.src = url;
  trace.state = "loading";
}

window.addEventListener("unhandledrejection", (e) => trace.errors.push(`unhandled: ${e.reason?.stack ?? e.reason}`));

start().catch((err) => {
  trace.state = "failed";
  trace.errors.push(String(err?.stack ?? err));
  console.error("host failed", err);
});
