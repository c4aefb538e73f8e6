// Settings: the person's own sessions, each saying whether it is
// confirmed (signed by their cross-signing identity) and when it was last
// seen; another session can be signed out here (the server asks for the
// password, as the spec's DELETE /devices requires).
import { MatrixError, type IMyDevice } from "matrix-js-sdk";
import type { VerificationRequest } from "matrix-js-sdk/lib/crypto-api";
import { useEffect, useState } from "preact/hooks";
import { useClient } from "../hooks";
import { formatDay, formatTime, useLang } from "../i18n";
import { tc } from "./strings";
import { VerificationPanel } from "./Verification";

interface Row {
  device: IMyDevice;
  confirmed: boolean;
  /** The dehydrated device (MSC3814): kept by the server, not a session to sign out. */
  dehydrated: boolean;
}

export function SessionsSection(props: { userId: string; deviceId: string }) {
  useLang();
  const client = useClient();
  const [rows, setRows] = useState<Row[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [signingOut, setSigningOut] = useState<string | null>(null);
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [tick, setTick] = useState(0);
  // Approving another session of one's own from here (it gets a prompt).
  const [approving, setApproving] = useState<VerificationRequest | null>(null);
  const [meConfirmed, setMeConfirmed] = useState(false);

  useEffect(() => {
    let alive = true;
    (async () => {
      const { devices } = await client.getDevices();
      const crypto = client.getCrypto();
      const known = crypto ? (await crypto.getUserDeviceInfo([props.userId], true)).get(props.userId) : undefined;
      const out: Row[] = [];
      for (const device of devices) {
        const status = crypto ? await crypto.getDeviceVerificationStatus(props.userId, device.device_id) : null;
        out.push({ device, confirmed: Boolean(status?.crossSigningVerified), dehydrated: Boolean(known?.get(device.device_id)?.dehydrated) });
      }
      // This session first, then the most recently seen.
      out.sort((a, b) => (a.device.device_id === props.deviceId ? -1 : b.device.device_id === props.deviceId ? 1 : (b.device.last_seen_ts ?? 0) - (a.device.last_seen_ts ?? 0)));
      if (alive) {
        setRows(out);
        setMeConfirmed(out.some((r) => r.device.device_id === props.deviceId && r.confirmed));
      }
    })().catch((err: unknown) => alive && setError(err instanceof Error ? err.message : String(err)));
    return () => {
      alive = false;
    };
  }, [client, tick]);

  const approve = async (deviceId: string) => {
    setError(null);
    try {
      const crypto = client.getCrypto();
      if (!crypto) throw new Error("end-to-end encryption is not running");
      setApproving(await crypto.requestDeviceVerification(props.userId, deviceId));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };

  const signOut = async (e: Event, deviceId: string) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      try {
        await client.deleteDevice(deviceId);
      } catch (err) {
        if (!(err instanceof MatrixError) || err.httpStatus !== 401 || !err.data?.flows) throw err;
        await client.deleteDevice(deviceId, {
          type: "m.login.password",
          identifier: { type: "m.id.user", user: props.userId },
          password,
          session: err.data.session as string,
        } as never);
      }
      setSigningOut(null);
      setPassword("");
      setTick((n) => n + 1);
    } catch (err) {
      setError(err instanceof MatrixError && err.httpStatus === 401 ? tc("e2e.sessions.wrongPassword") : err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="form e2e-sessions" aria-labelledby="settings-sessions">
      <h3 id="settings-sessions">{tc("e2e.sessions.title")}</h3>
      {rows === null && !error && <p class="muted">{tc("e2e.decrypting")}</p>}
      <ul class="sessions">
        {(rows ?? []).map(({ device, confirmed, dehydrated }) => {
          const mine = device.device_id === props.deviceId;
          const seen = device.last_seen_ts ? `${formatDay(device.last_seen_ts)} ${formatTime(device.last_seen_ts)}` : null;
          return (
            <li key={device.device_id} class="session" data-device-id={device.device_id}>
              <span class="session-name">
                <strong>{device.display_name || device.device_id}</strong>
                {mine && <span class="muted"> · {tc("e2e.sessions.this")}</span>}
              </span>
              <small class="muted">
                {device.device_id}
                {seen ? ` · ${tc("e2e.sessions.seen", { when: seen })}` : ""}
              </small>
              {dehydrated ? (
                <span class="session-state on">{tc("e2e.sessions.dehydrated")}</span>
              ) : (
                <span class={confirmed ? "session-state on" : "session-state off"}>{confirmed ? tc("e2e.sessions.confirmed") : tc("e2e.sessions.unconfirmed")}</span>
              )}
              {!mine && !dehydrated && !confirmed && meConfirmed && (
                <button type="button" class="small" aria-label={tc("e2e.sessions.approve", { name: device.display_name || device.device_id })} onClick={() => void approve(device.device_id)}>
                  {tc("e2e.sessions.approveShort")}
                </button>
              )}
              {!mine &&
                !dehydrated &&
                (signingOut === device.device_id ? (
                  <form class="inline-form" onSubmit={(e) => void signOut(e, device.device_id)}>
                    <label>
                      {tc("e2e.sessions.password")}
                      <input type="password" name="password" autoComplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
                    </label>
                    <button type="submit" class="small danger" disabled={busy || !password}>
                      {tc("e2e.sessions.signOutConfirm")}
                    </button>
                    <button type="button" class="small" onClick={() => setSigningOut(null)}>
                      {tc("e2e.sessions.cancel")}
                    </button>
                  </form>
                ) : (
                  <button type="button" class="small" aria-label={tc("e2e.sessions.signOut", { name: device.display_name || device.device_id })} onClick={() => setSigningOut(device.device_id)}>
                    {tc("e2e.sessions.signOutShort")}
                  </button>
                ))}
            </li>
          );
        })}
      </ul>
      {approving && (
        <VerificationPanel
          req={approving}
          thisUnconfirmed={false}
          onDone={() => setTick((n) => n + 1)}
          onClose={() => {
            setApproving(null);
            setTick((n) => n + 1);
          }}
        />
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
