// Approving a new session from another signed-in one (the spec's
// interactive verification between a person's own devices, to-device).
// Both ends are this client: the new session asks, the other one gets a
// prompt to approve it; then either compares seven emoji on both screens
// (SAS) or one scans the QR code the other shows. Once done, the approving
// session has signed the new one with the self-signing key and sends it
// the key backup's key, so the new session reads old messages from the
// backup without any export or import.
import { CryptoEvent } from "matrix-js-sdk/lib/crypto-api";
import {
  VerificationPhase,
  VerificationRequestEvent,
  VerifierEvent,
  type ShowQrCodeCallbacks,
  type ShowSasCallbacks,
  type VerificationRequest,
  type Verifier,
} from "matrix-js-sdk/lib/crypto-api";
import type { MatrixClient } from "matrix-js-sdk";
import type qrcodeFactory from "qrcode-generator";
import { useEffect, useRef, useState } from "preact/hooks";
import { lang, useLang } from "../i18n";
import { sasName } from "./sasNames";
import { tc } from "./strings";

const started = new WeakSet<Verifier>();

/** Runs the verifier's flow once (verify() sends our part); failures show as a cancelled request. */
function drive(v: Verifier): void {
  if (started.has(v)) return;
  started.add(v);
  v.verify().catch((err: unknown) => console.warn("salon: verification ended", err));
}

/** Re-renders on the request's and its verifier's changes. */
function useRequestTick(req: VerificationRequest): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    const bump = () => setTick((n) => n + 1);
    let verifier: Verifier | undefined;
    const watchVerifier = () => {
      if (req.verifier === verifier) return;
      verifier?.off(VerifierEvent.ShowSas, bump);
      verifier?.off(VerifierEvent.ShowReciprocateQr, bump);
      verifier?.off(VerifierEvent.Cancel, bump);
      verifier = req.verifier;
      verifier?.on(VerifierEvent.ShowSas, bump);
      verifier?.on(VerifierEvent.ShowReciprocateQr, bump);
      verifier?.on(VerifierEvent.Cancel, bump);
    };
    const onChange = () => {
      watchVerifier();
      bump();
    };
    req.on(VerificationRequestEvent.Change, onChange);
    watchVerifier();
    return () => {
      req.off(VerificationRequestEvent.Change, onChange);
      verifier?.off(VerifierEvent.ShowSas, bump);
      verifier?.off(VerifierEvent.ShowReciprocateQr, bump);
      verifier?.off(VerifierEvent.Cancel, bump);
    };
  }, [req]);
}

function toBase64(bytes: Uint8ClampedArray): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** A binary string (one char a byte, as a camera's QR reader gives byte-mode codes) as bytes. */
function bytesOf(s: string): Uint8ClampedArray {
  const out = new Uint8ClampedArray(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** The QR code of the bytes as SVG squares (the encoder is a chunk of its own, loaded when a code is first shown). */
function QrImage(props: { bytes: Uint8ClampedArray }) {
  const [qrcode, setQrcode] = useState<typeof qrcodeFactory | null>(null);
  useEffect(() => {
    let alive = true;
    import("qrcode-generator").then(
      (m) => alive && setQrcode(() => m.default),
      (err: unknown) => console.warn("salon: no QR code encoder", err),
    );
    return () => {
      alive = false;
    };
  }, []);
  if (!qrcode) return null;
  const qr = qrcode(0, "L");
  let s = "";
  for (const b of props.bytes) s += String.fromCharCode(b);
  qr.addData(s, "Byte");
  qr.make();
  const n = qr.getModuleCount();
  let d = "";
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + 4} ${r + 4}h1v1h-1z`;
  return (
    <svg class="qr-code" viewBox={`0 0 ${n + 8} ${n + 8}`} width={(n + 8) * 4} height={(n + 8) * 4} role="img" aria-label={tc("e2e.verify.qrLabel")} data-payload={toBase64(props.bytes)}>
      <rect width={n + 8} height={n + 8} fill="#fff" />
      <path d={d} fill="#000" shape-rendering="crispEdges" />
    </svg>
  );
}

/** The event a QR reader dispatches on the scanner with the code's text (bytes as chars). */
export const qrScannedEvent = "salon-qr-scanned";

interface BarcodeDetectorLike {
  detect(source: CanvasImageSource): Promise<{ rawValue: string }[]>;
}

/**
 * The camera's view with a QR reader: where the browser has one
 * (BarcodeDetector), each frame is looked at until a code is read; the
 * result is dispatched as qrScannedEvent on the scanner, which is what the
 * verification listens to.
 */
function QrScanner(props: { onCode: (text: string) => void }) {
  const ref = useRef<HTMLDivElement>(null);
  const video = useRef<HTMLVideoElement>(null);
  const [reader, setReader] = useState<"starting" | "reading" | "none">("starting");
  const onCode = useRef(props.onCode);
  onCode.current = props.onCode;

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const listener = (e: Event) => onCode.current(String((e as CustomEvent<string>).detail));
    el.addEventListener(qrScannedEvent, listener);
    let stream: MediaStream | null = null;
    let timer = 0;
    let alive = true;
    const Detector = (window as unknown as { BarcodeDetector?: new (o: { formats: string[] }) => BarcodeDetectorLike }).BarcodeDetector;
    (async () => {
      if (!Detector || !navigator.mediaDevices?.getUserMedia) {
        setReader("none");
        return;
      }
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      if (!alive) return;
      const v = video.current;
      if (!v) return;
      v.srcObject = stream;
      await v.play();
      setReader("reading");
      const detector = new Detector({ formats: ["qr_code"] });
      const look = async () => {
        if (!alive) return;
        try {
          const codes = await detector.detect(v);
          if (codes.length > 0 && alive) {
            el.dispatchEvent(new CustomEvent(qrScannedEvent, { detail: codes[0]?.rawValue ?? "" }));
            return;
          }
        } catch {
          // a frame the reader could not use: try the next
        }
        timer = window.setTimeout(() => void look(), 250);
      };
      void look();
    })().catch((err: unknown) => {
      console.warn("salon: no camera for the QR code", err);
      if (alive) setReader("none");
    });
    return () => {
      alive = false;
      clearTimeout(timer);
      el.removeEventListener(qrScannedEvent, listener);
      stream?.getTracks().forEach((t) => t.stop());
    };
  }, []);

  return (
    <div ref={ref} class="qr-scanner" data-reader={reader}>
      <video ref={video} muted playsInline class="qr-video" hidden={reader !== "reading"} />
      <p class="muted">{reader === "none" ? tc("e2e.verify.noReader") : tc("e2e.verify.pointCamera")}</p>
    </div>
  );
}

function Emoji(props: { sas: ShowSasCallbacks }) {
  const list = props.sas.sas.emoji ?? [];
  return (
    <ol class="sas-emoji" aria-label={tc("e2e.verify.emojiLabel")}>
      {list.map(([emoji, name], i) => (
        <li key={i} data-name={name}>
          <span class="sas-glyph" aria-hidden="true">
            {emoji}
          </span>
          <span class="sas-name">{sasName(name, lang())}</span>
        </li>
      ))}
    </ol>
  );
}

/**
 * One verification with another of the person's sessions, from request to
 * done. onDone is called once when it completes; onClose when the person
 * closes the panel.
 */
export function VerificationPanel(props: { req: VerificationRequest; onDone?: () => void; onClose: () => void; thisUnconfirmed?: boolean }) {
  useLang();
  const { req } = props;
  useRequestTick(req);
  const [qr, setQr] = useState<Uint8ClampedArray | null>(null);
  const [scanning, setScanning] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [sasAnswered, setSasAnswered] = useState(false);
  const doneOnce = useRef(false);
  const phase = req.phase;

  // In Ready, the code to show (when both sides can do QR codes).
  useEffect(() => {
    if (phase !== VerificationPhase.Ready || qr) return;
    let alive = true;
    req.generateQRCode().then(
      (bytes) => alive && bytes && setQr(bytes),
      (err: unknown) => console.warn("salon: no QR code for this verification", err),
    );
    return () => {
      alive = false;
    };
  }, [req, phase]);

  useEffect(() => {
    if (req.verifier && phase === VerificationPhase.Started) drive(req.verifier);
    if (phase === VerificationPhase.Done && !doneOnce.current) {
      doneOnce.current = true;
      props.onDone?.();
    }
  });

  const act = async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (err) {
      console.warn("salon: verification step failed", err);
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  // The other session's ID, as known from the request (the SDK may forget it once done).
  const otherRef = useRef("");
  if (req.otherDeviceId) otherRef.current = req.otherDeviceId;
  const other = otherRef.current;
  let body;
  let title = props.thisUnconfirmed === false && req.initiatedByMe ? tc("e2e.verify.otherTitle") : tc("e2e.verify.title");
  if (phase === VerificationPhase.Cancelled) {
    body = <p role="alert">{tc("e2e.verify.cancelled")}</p>;
  } else if (phase === VerificationPhase.Done) {
    const isNew = props.thisUnconfirmed ?? req.initiatedByMe;
    body = <p role="status">{isNew ? tc("e2e.verify.doneNew") : tc("e2e.verify.doneOld", { device: other })}</p>;
  } else if (phase === VerificationPhase.Requested || phase === VerificationPhase.Unsent) {
    if (req.initiatedByMe) {
      body = <p role="status">{props.thisUnconfirmed === false ? tc("e2e.verify.waitingOther") : tc("e2e.verify.waiting")}</p>;
    } else {
      title = props.thisUnconfirmed ? tc("e2e.verify.title") : tc("e2e.verify.incomingTitle");
      body = (
        <>
          <p>{props.thisUnconfirmed ? tc("e2e.verify.offered", { device: other }) : tc("e2e.verify.incoming", { device: other })}</p>
          <div class="e2e-actions">
            <button type="button" class="small primary" disabled={busy} onClick={() => void act(() => req.accept())}>
              {props.thisUnconfirmed ? tc("e2e.verify.accept") : tc("e2e.verify.start")}
            </button>
            <button type="button" class="small" disabled={busy} onClick={() => void act(() => req.cancel())}>
              {tc("e2e.verify.decline")}
            </button>
          </div>
        </>
      );
    }
  } else if (phase === VerificationPhase.Ready) {
    const canScan = req.otherPartySupportsMethod("m.qr_code.show.v1");
    const onCode = (text: string) => {
      setScanning(false);
      void act(async () => {
        const v = await req.scanQRCode(bytesOf(text));
        drive(v);
      });
    };
    body = (
      <>
        <p>{tc("e2e.verify.choose")}</p>
        <div class="verify-ways">
          {qr && (
            <figure class="verify-qr">
              <QrImage bytes={qr} />
              <figcaption class="muted">{tc("e2e.verify.qrShown")}</figcaption>
            </figure>
          )}
          {scanning && <QrScanner onCode={onCode} />}
        </div>
        <div class="e2e-actions">
          <button type="button" class="small primary" disabled={busy} onClick={() => void act(async () => drive(await req.startVerification("m.sas.v1")))}>
            {tc("e2e.verify.emoji")}
          </button>
          {canScan && !scanning && (
            <button type="button" class="small" disabled={busy} onClick={() => setScanning(true)}>
              {tc("e2e.verify.scan")}
            </button>
          )}
          <button type="button" class="small" disabled={busy} onClick={() => void act(() => req.cancel())}>
            {tc("e2e.verify.cancel")}
          </button>
        </div>
      </>
    );
  } else {
    const v = req.verifier;
    const sas = v?.getShowSasCallbacks() ?? null;
    const reciprocate: ShowQrCodeCallbacks | null = v?.getReciprocateQrCodeCallbacks() ?? null;
    if (sas && !sasAnswered) {
      body = (
        <>
          <p>{tc("e2e.verify.compare")}</p>
          <Emoji sas={sas} />
          <div class="e2e-actions">
            <button
              type="button"
              class="small primary"
              disabled={busy}
              onClick={() =>
                void act(async () => {
                  setSasAnswered(true);
                  await sas.confirm();
                })
              }
            >
              {tc("e2e.verify.match")}
            </button>
            <button
              type="button"
              class="small danger"
              disabled={busy}
              onClick={() => {
                setSasAnswered(true);
                sas.mismatch();
              }}
            >
              {tc("e2e.verify.noMatch")}
            </button>
          </div>
        </>
      );
    } else if (reciprocate && !sasAnswered) {
      body = (
        <>
          <p>{tc("e2e.verify.scannedQuestion")}</p>
          <div class="e2e-actions">
            <button
              type="button"
              class="small primary"
              onClick={() => {
                setSasAnswered(true);
                reciprocate.confirm();
              }}
            >
              {tc("e2e.verify.scannedYes")}
            </button>
            <button type="button" class="small danger" onClick={() => reciprocate.cancel()}>
              {tc("e2e.verify.scannedNo")}
            </button>
          </div>
        </>
      );
    } else {
      body = <p role="status">{tc("e2e.verify.waitingOther")}</p>;
    }
  }

  const finished = phase === VerificationPhase.Done || phase === VerificationPhase.Cancelled;
  return (
    <section class="e2e-panel verify" aria-labelledby="e2e-verify-title" data-phase={VerificationPhase[phase]}>
      <h2 id="e2e-verify-title">{title}</h2>
      {body}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {finished && (
        <button type="button" class="small" onClick={props.onClose}>
          {tc("e2e.close")}
        </button>
      )}
    </section>
  );
}

/** Requests from another of the person's sessions asking to be approved, as they arrive. */
export function useIncomingVerification(client: MatrixClient): [VerificationRequest | null, (r: VerificationRequest | null) => void] {
  const [req, setReq] = useState<VerificationRequest | null>(null);
  useEffect(() => {
    const on = (r: VerificationRequest) => {
      if (r.isSelfVerification && !r.initiatedByMe) setReq(r);
    };
    client.on(CryptoEvent.VerificationRequestReceived, on);
    return () => {
      client.off(CryptoEvent.VerificationRequestReceived, on);
    };
  }, [client]);
  return [req, setReq];
}

/**
 * After another session approved this one: waits for the key backup's
 * key it sends, then restores the backup's room keys so old messages
 * decrypt. Resolves with the number of keys restored (0 when the key did
 * not come).
 */
export async function restoreAfterApproval(client: MatrixClient, waitMs = 30_000): Promise<number> {
  const crypto = client.getCrypto();
  if (!crypto) return 0;
  const end = Date.now() + waitMs;
  while (!(await crypto.getSessionBackupPrivateKey())) {
    if (Date.now() > end) return 0;
    await new Promise((r) => setTimeout(r, 300));
  }
  await crypto.checkKeyBackupAndEnable();
  const res = await crypto.restoreKeyBackup();
  return res.imported;
}
