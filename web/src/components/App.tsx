import { HttpApiEvent, MatrixError, type MatrixClient } from "matrix-js-sdk";
import { useCallback, useEffect, useState } from "preact/hooks";
import { t, useLang } from "../i18n";
import { ClientContext } from "../hooks";
import { clientFor, releaseMedia, startSync } from "../matrix";
import { clearSession, loadSession, loginWithToken, logout, saveSession, type Session } from "../session";
import { deleteCryptoStore, startCrypto } from "../crypto/engine";
import { Auth } from "./Auth";
import { Shell } from "./Shell";

type State =
  | { kind: "loading" }
  | { kind: "auth"; notice: string | null }
  | { kind: "main"; session: Session; client: MatrixClient };

export function App() {
  useLang();
  const [state, setState] = useState<State>({ kind: "loading" });

  const enter = useCallback(async (session: Session, fresh: boolean) => {
    const client = clientFor(session);
    if (!fresh) {
      // A stored token may have been revoked (signed out elsewhere).
      try {
        await client.whoami();
      } catch (err) {
        if (err instanceof MatrixError && (err.errcode === "M_UNKNOWN_TOKEN" || err.httpStatus === 401)) {
          clearSession();
          setState({ kind: "auth", notice: t("auth.sessionEnded") });
          return;
        }
        // Offline or a server error: keep the session, sync will retry.
      }
    }
    saveSession(session);
    client.on(HttpApiEvent.SessionLoggedOut, () => {
      client.stopClient();
      clearSession();
      releaseMedia();
      void deleteCryptoStore();
      setState({ kind: "auth", notice: t("auth.sessionEnded") });
    });
    setState({ kind: "main", session, client });
    // End-to-end encryption (its own chunk, loaded now) before the first
    // sync, so the sync's to-device messages and encrypted events reach it.
    void startCrypto(client).then(() => startSync(client));
  }, []);

  useEffect(() => {
    const params = new URLSearchParams(window.location.search);
    const loginToken = params.get("loginToken");
    if (loginToken) {
      // Back from single sign-on: trade the token for a session and drop
      // it from the address bar.
      params.delete("loginToken");
      const q = params.toString();
      window.history.replaceState(null, "", window.location.pathname + (q ? `?${q}` : "") + window.location.hash);
      loginWithToken(loginToken).then(
        (s) => enter(s, true),
        () => setState({ kind: "auth", notice: t("auth.login.failed") }),
      );
      return;
    }
    const s = loadSession();
    if (s) void enter(s, false);
    else setState({ kind: "auth", notice: null });
  }, [enter]);

  const signOut = useCallback(async () => {
    if (state.kind !== "main") return;
    await logout(state.client);
    releaseMedia();
    // The device is gone: its keys are of no more use.
    await deleteCryptoStore();
    window.location.hash = "";
    setState({ kind: "auth", notice: null });
  }, [state]);

  switch (state.kind) {
    case "loading":
      return (
        <div class="splash" role="status">
          {t("app.loading")}
        </div>
      );
    case "auth":
      return <Auth notice={state.notice} onSession={(s) => enter(s, true)} />;
    case "main":
      return (
        <ClientContext.Provider value={state.client}>
          <Shell key={state.session.userId} session={state.session} onSignOut={signOut} />
        </ClientContext.Provider>
      );
  }
}
