// The recovery pieces shared by the encryption panel and the settings: the
// recovery key shown once (copy, download), choosing a passphrase,
// changing the recovery key, resetting after total loss, and the room key
// export file as the last resort.
import type { MatrixClient } from "matrix-js-sdk";
import { useState } from "preact/hooks";
import { useClient } from "../hooks";
import { useLang } from "../i18n";
import { BadKeyFile, decryptKeyFile, encryptKeyFile } from "./keyfile";
import { changeRecovery, resetIdentity } from "./recovery";
import { tc } from "./strings";

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function save(name: string, text: string): void {
  const href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}

/** The recovery key, shown once, with copy and download. */
export function RecoveryKeyShow(props: { keyText: string; passphrase?: boolean; onSaved: () => void; children?: preact.ComponentChildren }) {
  useLang();
  const client = useClient();
  const [note, setNote] = useState<string | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.keyText);
      setNote(tc("e2e.copied"));
    } catch {
      setNote(tc("e2e.copyFailed"));
    }
  };
  const download = () => {
    save("salon-recovery-key.txt", `${tc("e2e.fileIntro", { user: client.getUserId() ?? "" })}\n\n${props.keyText}\n`);
    setNote(tc("e2e.downloaded"));
  };
  return (
    <section class="e2e-panel" aria-labelledby="e2e-key-title">
      <h2 id="e2e-key-title">{tc("e2e.keyTitle")}</h2>
      <p>{props.passphrase ? tc("e2e.passphraseSet") : tc("e2e.keyIntro")}</p>
      <p>
        <code class="recovery-key" aria-label={tc("e2e.keyLabel")}>
          {props.keyText}
        </code>
      </p>
      <p class="muted">{tc("e2e.keyOnce")}</p>
      <div class="e2e-actions">
        <button type="button" class="small" onClick={() => void copy()}>
          {tc("e2e.copy")}
        </button>
        <button type="button" class="small" onClick={download}>
          {tc("e2e.download")}
        </button>
        <button type="button" class="small primary" onClick={props.onSaved}>
          {tc("e2e.saved")}
        </button>
        {note && (
          <span class="muted" role="status">
            {note}
          </span>
        )}
      </div>
      {props.children}
    </section>
  );
}

/** Two passphrase fields that must match; calls onSubmit with it. */
function PassphraseFields(props: { label: string; busy: boolean; submit: string; onSubmit: (p: string) => void; required?: boolean; danger?: boolean }) {
  const [a, setA] = useState("");
  const [b, setB] = useState("");
  const mismatch = b !== "" && a !== b;
  const short = a !== "" && a.length < 8;
  return (
    <form
      class="e2e-actions"
      onSubmit={(e) => {
        e.preventDefault();
        if (!mismatch && !short && (a || !props.required)) props.onSubmit(a);
      }}
    >
      <label>
        {props.label}{" "}
        <input type="password" name="passphrase" autoComplete="new-password" value={a} onInput={(e) => setA(e.currentTarget.value)} disabled={props.busy} />
      </label>
      <label>
        {tc("e2e.passphraseAgain")}{" "}
        <input type="password" name="passphrase-again" autoComplete="new-password" value={b} onInput={(e) => setB(e.currentTarget.value)} disabled={props.busy} />
      </label>
      <button type="submit" class={props.danger ? "small danger" : "small primary"} disabled={props.busy || mismatch || short || a !== b || (props.required && !a)}>
        {props.submit}
      </button>
      {(mismatch || short) && (
        <span class="error" role="alert">
          {mismatch ? tc("e2e.passphraseMismatch") : tc("e2e.passphraseShort")}
        </span>
      )}
    </form>
  );
}

/** "Use a passphrase instead": a new recovery key derived from a passphrase the person chooses. */
export function ChoosePassphrase(props: { onKey: (key: string) => void }) {
  useLang();
  const client = useClient();
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!open) {
    return (
      <p class="e2e-actions">
        <button type="button" class="small" onClick={() => setOpen(true)}>
          {tc("e2e.usePassphrase")}
        </button>
      </p>
    );
  }
  return (
    <div class="e2e-passphrase">
      <p>{tc("e2e.passphraseIntro")}</p>
      <PassphraseFields
        label={tc("e2e.passphrase")}
        busy={busy}
        required
        submit={busy ? tc("e2e.working") : tc("e2e.setPassphrase")}
        onSubmit={(p) => {
          setBusy(true);
          setError(null);
          changeRecovery(client, p).then(
            (key) => {
              setBusy(false);
              setOpen(false);
              props.onKey(key);
            },
            (err: unknown) => {
              setBusy(false);
              setError(tc("e2e.setupFailed", { reason: errorText(err) }));
            },
          );
        }}
      />
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/** Reset after total loss: the warning, the password, and a new recovery key. */
export function ResetForm(props: { onKey: (key: string) => void }) {
  useLang();
  const client = useClient();
  const [password, setPassword] = useState("");
  const [understood, setUnderstood] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    resetIdentity(client, password).then(
      (key) => {
        setBusy(false);
        setPassword("");
        props.onKey(key);
      },
      (err: unknown) => {
        setBusy(false);
        const status = (err as { httpStatus?: number }).httpStatus;
        setError(status === 401 || status === 403 ? tc("e2e.sessions.wrongPassword") : tc("e2e.setupFailed", { reason: errorText(err) }));
      },
    );
  };
  return (
    <form class="e2e-reset" onSubmit={submit} aria-labelledby="e2e-reset-title">
      <h3 id="e2e-reset-title">{tc("e2e.reset.title")}</h3>
      <p>{tc("e2e.reset.when")}</p>
      <ul class="e2e-warning" role="note">
        <li>{tc("e2e.reset.lose")}</li>
        <li>{tc("e2e.reset.contacts")}</li>
        <li>{tc("e2e.reset.keep")}</li>
      </ul>
      <p class="e2e-actions">
        <label>
          <input type="checkbox" checked={understood} onChange={(e) => setUnderstood(e.currentTarget.checked)} disabled={busy} /> {tc("e2e.reset.understand")}
        </label>
      </p>
      <p class="e2e-actions">
        <label>
          {tc("e2e.sessions.password")}{" "}
          <input type="password" name="password" autoComplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} disabled={busy} />
        </label>
        <button type="submit" class="small danger" disabled={busy || !understood || !password}>
          {busy ? tc("e2e.working") : tc("e2e.reset.go")}
        </button>
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

/** The room key file: export (with a passphrase) and import. */
export function KeyFileSection(props: { client: MatrixClient }) {
  useLang();
  const { client } = props;
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [file, setFile] = useState<File | null>(null);
  const [importPass, setImportPass] = useState("");

  const exportKeys = (passphrase: string) => {
    setBusy(true);
    setError(null);
    setNote(null);
    (async () => {
      const crypto = client.getCrypto();
      if (!crypto) throw new Error("end-to-end encryption is not running");
      const json = await crypto.exportRoomKeysAsJson();
      const n = (JSON.parse(json) as unknown[]).length;
      save("salon-message-keys.txt", await encryptKeyFile(json, passphrase));
      setNote(tc("e2e.keyfile.exported", { n }));
    })()
      .catch((err: unknown) => setError(errorText(err)))
      .finally(() => setBusy(false));
  };

  const importKeys = (e: Event) => {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(null);
    setNote(null);
    (async () => {
      const crypto = client.getCrypto();
      if (!crypto) throw new Error("end-to-end encryption is not running");
      const json = await decryptKeyFile(await file.text(), importPass);
      const n = (JSON.parse(json) as unknown[]).length;
      await crypto.importRoomKeysAsJson(json);
      setNote(tc("e2e.keyfile.imported", { n }));
      setImportPass("");
    })()
      .catch((err: unknown) => setError(err instanceof BadKeyFile ? tc("e2e.keyfile.bad") : errorText(err)))
      .finally(() => setBusy(false));
  };

  return (
    <section class="form e2e-keyfile" aria-labelledby="settings-keyfile">
      <h3 id="settings-keyfile">{tc("e2e.keyfile.title")}</h3>
      <p class="muted">{tc("e2e.keyfile.intro")}</p>
      <PassphraseFields label={tc("e2e.keyfile.passphrase")} busy={busy} required submit={tc("e2e.keyfile.export")} onSubmit={exportKeys} />
      <form class="e2e-actions" onSubmit={importKeys}>
        <label>
          {tc("e2e.keyfile.file")} <input type="file" name="keyfile" accept=".txt,text/plain" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} disabled={busy} />
        </label>
        <label>
          {tc("e2e.keyfile.filePassphrase")}{" "}
          <input type="password" name="keyfile-passphrase" autoComplete="off" value={importPass} onInput={(e) => setImportPass(e.currentTarget.value)} disabled={busy} />
        </label>
        <button type="submit" class="small" disabled={busy || !file || !importPass}>
          {tc("e2e.keyfile.import")}
        </button>
      </form>
      {note && (
        <p class="muted" role="status">
          {note}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

/** Settings: change the recovery key, reset after total loss, the key file. */
export function RecoverySection() {
  useLang();
  const client = useClient();
  const [key, setKey] = useState<{ text: string; passphrase: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [changing, setChanging] = useState(false);

  const change = (passphrase: string) => {
    setBusy(true);
    setError(null);
    changeRecovery(client, passphrase).then(
      (text) => {
        setBusy(false);
        setChanging(false);
        setKey({ text, passphrase: Boolean(passphrase) });
      },
      (err: unknown) => {
        setBusy(false);
        setError(tc("e2e.setupFailed", { reason: errorText(err) }));
      },
    );
  };

  return (
    <>
      <section class="form e2e-recovery" aria-labelledby="settings-recovery">
        <h3 id="settings-recovery">{tc("e2e.recovery.title")}</h3>
        {key ? (
          <RecoveryKeyShow keyText={key.text} passphrase={key.passphrase} onSaved={() => setKey(null)} />
        ) : changing ? (
          <>
            <p>{tc("e2e.recovery.changeIntro")}</p>
            <PassphraseFields label={tc("e2e.recovery.optionalPassphrase")} busy={busy} submit={busy ? tc("e2e.working") : tc("e2e.recovery.make")} onSubmit={change} />
          </>
        ) : (
          <p class="e2e-actions">
            <span class="muted">{tc("e2e.recovery.intro")}</span>
            <button type="button" class="small" onClick={() => setChanging(true)}>
              {tc("e2e.recovery.change")}
            </button>
          </p>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <details class="e2e-lost">
          <summary>{tc("e2e.reset.summary")}</summary>
          <ResetForm onKey={(text) => setKey({ text, passphrase: false })} />
        </details>
      </section>
      <KeyFileSection client={client} />
    </>
  );
}
