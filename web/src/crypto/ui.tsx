// What people see of end-to-end encryption in a room: the header's
// state in words, and encrypted messages that cannot be read yet with
// the reason in words (they redraw themselves once their key arrives).
import { MatrixEventEvent, RoomStateEvent, type MatrixClient, type MatrixEvent, type Room } from "matrix-js-sdk";
import { CryptoEvent, DecryptionFailureCode } from "matrix-js-sdk/lib/crypto-api";
import { useEffect, useState } from "preact/hooks";
import { useClient, useEmitterTick } from "../hooks";
import { useLang } from "../i18n";
import { resetAt } from "./recovery";
import { tc } from "./strings";
import "./crypto.css";

/** "End-to-end encrypted" / "Not encrypted", for the room's header. */
export function EncryptionState(props: { room: Room }) {
  useLang();
  useEmitterTick(props.room.currentState, [RoomStateEvent.Events]);
  const on = props.room.hasEncryptionStateEvent();
  return (
    <p class={on ? "e2e-state on" : "e2e-state off"} data-encrypted={on ? "true" : "false"} title={on ? tc("e2e.encryptedHint") : tc("e2e.notEncryptedHint")}>
      <span aria-hidden="true">{on ? "🔒 " : "🔓 "}</span>
      {on ? tc("e2e.encrypted") : tc("e2e.notEncrypted")}
    </p>
  );
}

function senderName(room: Room, ev: MatrixEvent): string {
  const id = ev.getSender() ?? "";
  return room.getMember(id)?.name ?? id;
}

/** Why an encrypted event is not readable (yet), in words. */
export function undecryptableText(client: MatrixClient, room: Room, ev: MatrixEvent): string {
  const user = senderName(room, ev);
  if (ev.isBeingDecrypted() || ev.shouldAttemptDecryption()) return tc("e2e.decrypting");
  // Keys lost in a reset of the person's encryption never come back.
  if (ev.decryptionFailureReason !== null && ev.getTs() < resetAt(client)) return tc("e2e.lostInReset");
  switch (ev.decryptionFailureReason) {
    case DecryptionFailureCode.MEGOLM_UNKNOWN_INBOUND_SESSION_ID:
    case DecryptionFailureCode.OLM_UNKNOWN_MESSAGE_INDEX:
      return ev.getSender() === client.getUserId() ? tc("e2e.waitingKeyBackup") : tc("e2e.waitingKey", { user });
    case DecryptionFailureCode.MEGOLM_KEY_WITHHELD:
      return tc("e2e.withheld", { user });
    case DecryptionFailureCode.MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE:
      return tc("e2e.withheldUnverified", { user });
    case DecryptionFailureCode.HISTORICAL_MESSAGE_USER_NOT_JOINED:
      return tc("e2e.beforeJoined");
    case DecryptionFailureCode.HISTORICAL_MESSAGE_NO_KEY_BACKUP:
      return tc("e2e.noBackup");
    case DecryptionFailureCode.HISTORICAL_MESSAGE_BACKUP_UNCONFIGURED:
      return tc("e2e.backupLocked");
    case DecryptionFailureCode.HISTORICAL_MESSAGE_WORKING_BACKUP:
      return tc("e2e.historical");
    case DecryptionFailureCode.SENDER_IDENTITY_PREVIOUSLY_VERIFIED:
      return tc("e2e.senderChanged", { user });
    case DecryptionFailureCode.UNSIGNED_SENDER_DEVICE:
    case DecryptionFailureCode.UNKNOWN_SENDER_DEVICE:
      return tc("e2e.unknownDevice", { user });
    case null:
      // No crypto in this client (it did not start): nothing decrypts.
      return client.getCrypto() ? tc("e2e.decrypting") : tc("e2e.unavailable");
  }
  return tc("e2e.failed", { reason: String(ev.decryptionFailureReason) });
}

/** The body of an encrypted message that is not readable yet. */
export function Undecryptable(props: { room: Room; ev: MatrixEvent }) {
  useLang();
  const client = useClient();
  useEmitterTick(client, [MatrixEventEvent.Decrypted]);
  return (
    <p class="e2e-undecryptable muted" data-reason={props.ev.decryptionFailureReason ?? "pending"}>
      <span aria-hidden="true">🔒 </span>
      {undecryptableText(client, props.room, props.ev)}
    </p>
  );
}

/**
 * Above an encrypted room's timeline: a plain-language notice for each
 * member whose encryption identity changed since this client first saw it
 * (they reset their encryption, typically after losing every device), in
 * place of warning shields. "OK" accepts the new identity (pins it) and
 * the notice goes.
 */
export function IdentityNotices(props: { room: Room }) {
  useLang();
  const client = useClient();
  const tick = useEmitterTick(client, [CryptoEvent.UserTrustStatusChanged]);
  const [changed, setChanged] = useState<string[]>([]);
  const encrypted = props.room.hasEncryptionStateEvent();

  useEffect(() => {
    const crypto = client.getCrypto();
    if (!crypto || !encrypted) {
      setChanged([]);
      return;
    }
    let alive = true;
    (async () => {
      const me = client.getUserId();
      // Small rooms only: a lecture hall's hundreds of members are not listed one by one.
      const members = props.room.getJoinedMembers().filter((m) => m.userId !== me).slice(0, 50);
      const out: string[] = [];
      for (const m of members) {
        const status = await crypto.getUserVerificationStatus(m.userId);
        if (status.needsUserApproval) out.push(m.userId);
      }
      if (alive) setChanged(out);
    })().catch((err: unknown) => console.warn("salon: identity check failed", err));
    return () => {
      alive = false;
    };
  }, [client, props.room, encrypted, tick]);

  if (changed.length === 0) return null;
  return (
    <ul class="e2e-identity-notices">
      {changed.map((userId) => (
        <li key={userId} class="e2e-identity-notice" role="status">
          <span>{tc("e2e.identityChanged", { user: props.room.getMember(userId)?.name ?? userId })}</span>{" "}
          <button
            type="button"
            class="small"
            onClick={() => {
              void client
                .getCrypto()
                ?.pinCurrentUserIdentity(userId)
                .then(() => setChanged((c) => c.filter((u) => u !== userId)));
            }}
          >
            {tc("e2e.identityOk")}
          </button>
        </li>
      ))}
    </ul>
  );
}
