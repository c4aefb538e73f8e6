// The encryption panel at the top of the signed-in layout. At an
// account's first sign-in it sets up recovery without asking anything and
// shows the recovery key once, to copy or download. In a later new
// session it asks to confirm it is the same person with the recovery key
// (or passphrase), or to approve it from another signed-in session (emoji
// comparison or QR code, src/crypto/Verification.tsx); then old messages
// decrypt from the key backup. A new session is never left unconfirmed
// silently: "not now" folds the panel into a one-line reminder that stays
// until the session is confirmed. Another session's request to be
// approved shows here too.
import type { MatrixClient } from "matrix-js-sdk";
import type { VerificationRequest } from "matrix-js-sdk/lib/crypto-api";
import { useEffect, useState } from "preact/hooks";
import { useClient } from "../hooks";
import { useLang } from "../i18n";
import { cryptoStarted } from "./engine";
import { recover, setUpRecovery, standing, WrongRecoveryKey } from "./recovery";
import { tc } from "./strings";
import { ChoosePassphrase, RecoveryKeyShow, ResetForm } from "./RecoveryForms";
import { restoreAfterApproval, useIncomingVerification, VerificationPanel } from "./Verification";
import "./crypto.css";

type View =
  | { kind: "none" }
  | { kind: "unavailable" }
  | { kind: "showKey"; key: string; passphrase?: boolean }
  | { kind: "unconfirmed"; busy: boolean; error: string | null; folded?: boolean }
  | { kind: "confirmed"; restored: number }
  | { kind: "failed"; message: string };

/** The person's other sessions with encryption keys (the dehydrated device aside). */
async function otherSessions(client: MatrixClient): Promise<number> {
  const crypto = client.getCrypto();
  const me = client.getSafeUserId();
  if (!crypto) return 0;
  const devices = (await crypto.getUserDeviceInfo([me], true)).get(me);
  let n = 0;
  for (const [id, d] of devices ?? []) if (id !== client.getDeviceId() && !d.dehydrated) n++;
  return n;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function EncryptionPanel() {
  useLang();
  const client = useClient();
  const [view, setView] = useState<View>({ kind: "none" });
  const [text, setText] = useState("");
  const [incoming, setIncoming] = useIncomingVerification(client);
  // This session's own request to be approved by another one.
  const [asking, setAsking] = useState<VerificationRequest | null>(null);
  // How many other sessions of the person could approve this one (null: not known yet).
  const [others, setOthers] = useState<number | null>(null);

  useEffect(() => {
    let alive = true;
    (async () => {
      if (!(await cryptoStarted(client))) {
        if (alive) setView({ kind: "unavailable" });
        return;
      }
      const s = await standing(client);
      if (!alive) return;
      if (s === "new") {
        // No interim line: the panel appears once, with the key, so the
        // layout below it moves once.
        const key = await setUpRecovery(client);
        if (alive) setView({ kind: "showKey", key });
      } else if (s === "unconfirmed") {
        void otherSessions(client).then((n) => alive && setOthers(n));
        setView({ kind: "unconfirmed", busy: false, error: null });
      }
    })().catch((err: unknown) => {
      console.error("salon: setting up encryption failed", err);
      if (alive) setView({ kind: "failed", message: errorText(err) });
    });
    return () => {
      alive = false;
    };
  }, [client]);

  if (incoming) {
    // Another session may ask this one to be approved, or, from its
    // settings, offer to approve this one while it is not confirmed yet.
    const unconfirmed = view.kind === "unconfirmed";
    return (
      <VerificationPanel
        req={incoming}
        thisUnconfirmed={unconfirmed}
        onDone={
          unconfirmed
            ? () => {
                void restoreAfterApproval(client).then(
                  (restored) => {
                    setIncoming(null);
                    setView({ kind: "confirmed", restored });
                  },
                  (err: unknown) => {
                    setIncoming(null);
                    setView({ kind: "failed", message: errorText(err) });
                  },
                );
              }
            : undefined
        }
        onClose={() => setIncoming(null)}
      />
    );
  }
  if (asking) {
    return (
      <VerificationPanel
        req={asking}
        onDone={() => {
          // Approved: the backup's key arrives from the other session.
          void restoreAfterApproval(client).then(
            (restored) => {
              setAsking(null);
              setView({ kind: "confirmed", restored });
            },
            (err: unknown) => {
              setAsking(null);
              setView({ kind: "failed", message: errorText(err) });
            },
          );
        }}
        onClose={() => {
          setAsking(null);
          void standing(client).then((s) => s === "ready" && setView({ kind: "confirmed", restored: 0 }));
        }}
      />
    );
  }

  switch (view.kind) {
    case "none":
      return null;
    case "unavailable":
      return (
        <section class="e2e-panel warn" role="alert">
          <p>{tc("e2e.unavailable")}</p>
        </section>
      );
    case "failed":
      return (
        <section class="e2e-panel warn" role="alert">
          <p>{tc("e2e.setupFailed", { reason: view.message })}</p>
          <button type="button" class="small" onClick={() => setView({ kind: "none" })}>
            {tc("e2e.close")}
          </button>
        </section>
      );
    case "showKey":
      return (
        <RecoveryKeyShow keyText={view.key} passphrase={view.passphrase} onSaved={() => setView({ kind: "none" })}>
          {!view.passphrase && <ChoosePassphrase onKey={(key) => setView({ kind: "showKey", key, passphrase: true })} />}
        </RecoveryKeyShow>
      );
    case "unconfirmed": {
      if (view.folded) {
        return (
          <section class="e2e-panel folded" role="status" aria-label={tc("e2e.confirmTitle")}>
            <p>
              {tc("e2e.unconfirmedReminder")}{" "}
              <button type="button" class="small" onClick={() => setView({ ...view, folded: false })}>
                {tc("e2e.confirmNow")}
              </button>
            </p>
          </section>
        );
      }
      const approve = async () => {
        setView({ kind: "unconfirmed", busy: true, error: null });
        try {
          const crypto = client.getCrypto();
          if (!crypto) throw new Error("end-to-end encryption is not running");
          setAsking(await crypto.requestOwnUserVerification());
          setView({ kind: "unconfirmed", busy: false, error: null });
        } catch (err) {
          setView({ kind: "unconfirmed", busy: false, error: tc("e2e.setupFailed", { reason: errorText(err) }) });
        }
      };
      const submit = async (e: Event) => {
        e.preventDefault();
        setView({ kind: "unconfirmed", busy: true, error: null });
        try {
          const restored = await recover(client, text);
          setText("");
          setView({ kind: "confirmed", restored });
        } catch (err) {
          console.warn("salon: confirming this session failed", err);
          setView({ kind: "unconfirmed", busy: false, error: err instanceof WrongRecoveryKey ? tc("e2e.wrongKey") : tc("e2e.setupFailed", { reason: errorText(err) }) });
        }
      };
      return (
        <section class="e2e-panel" aria-labelledby="e2e-confirm-title">
          <h2 id="e2e-confirm-title">{tc("e2e.confirmTitle")}</h2>
          <p>{tc("e2e.confirmIntro")}</p>
          {others === 0 ? (
            <p class="muted">{tc("e2e.noOtherSession")}</p>
          ) : (
            <p class="e2e-actions">
              <button type="button" class="small primary" onClick={() => void approve()} disabled={view.busy}>
                {tc("e2e.approveFromOther")}
              </button>
              <span class="muted">{tc("e2e.orKey")}</span>
            </p>
          )}
          <form class="e2e-actions" onSubmit={(e) => void submit(e)}>
            <label>
              {tc("e2e.keyInput")}{" "}
              <input type="password" name="recovery-key" autoComplete="off" value={text} onInput={(e) => setText(e.currentTarget.value)} disabled={view.busy} />
            </label>
            <button type="submit" class="small primary" disabled={view.busy || !text.trim()}>
              {view.busy ? tc("e2e.confirming") : tc("e2e.confirm")}
            </button>
            <button type="button" class="small" onClick={() => setView({ ...view, folded: true })} disabled={view.busy}>
              {tc("e2e.notNow")}
            </button>
          </form>
          {view.error && (
            <p class="error" role="alert">
              {view.error}
            </p>
          )}
          <details class="e2e-lost">
            <summary>{tc("e2e.reset.summary")}</summary>
            <ResetForm onKey={(key) => setView({ kind: "showKey", key })} />
          </details>
        </section>
      );
    }
    case "confirmed":
      return (
        <section class="e2e-panel" role="status">
          <p>{tc("e2e.confirmed", { n: view.restored })}</p>
          <button type="button" class="small" onClick={() => setView({ kind: "none" })}>
            {tc("e2e.close")}
          </button>
        </section>
      );
  }
}
