// Attachments of encrypted rooms in the timeline: the same views as
// unencrypted ones (src/components/Timeline.tsx Media), with the bytes
// fetched, checked against their hash and decrypted in the browser
// (attachments.ts). The thumbnail is the sender's own (thumbnail_file):
// the server cannot make thumbnails of what it cannot read.
import type { MatrixEvent } from "matrix-js-sdk";
import { MsgType } from "matrix-js-sdk";
import { useEffect, useState } from "preact/hooks";
import { Dialog } from "../components/common";
import { Icon } from "../components/icons";
import { useClient } from "../hooks";
import { formatBytes, t } from "../i18n";
import { decryptedBlobUrl, downloadDecrypted, encryptedFileOf, type EncryptedFile } from "./attachments";
import { tc } from "./strings";

function DecryptedImage(props: { file: EncryptedFile; mimetype: string; alt: string; width?: number | undefined; height?: number | undefined; class: string; onClick?: () => void }) {
  const client = useClient();
  const [src, setSrc] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let alive = true;
    setSrc(null);
    setFailed(false);
    decryptedBlobUrl(client, props.file, props.mimetype).then(
      (u) => alive && setSrc(u),
      (err: unknown) => {
        console.warn("salon: an encrypted image could not be decrypted", err);
        if (alive) setFailed(true);
      },
    );
    return () => {
      alive = false;
    };
  }, [client, props.file.url]);
  const style = props.width && props.height ? { "--w": String(props.width), "--h": String(props.height) } : undefined;
  if (failed) return <span class="media-failed">{tc("e2e.attachmentFailed")}</span>;
  const img = src ? <img src={src} alt={props.alt} class={props.class} /> : <span class="media-loading" aria-label={t("app.loading")} />;
  return props.onClick ? (
    <button type="button" class="media-box" style={style} onClick={props.onClick} aria-label={props.alt}>
      {img}
    </button>
  ) : (
    <span class="media-box" style={style}>
      {img}
    </span>
  );
}

export function EncryptedMedia(props: { ev: MatrixEvent; file: EncryptedFile }) {
  const client = useClient();
  const c = props.ev.getContent();
  const file = props.file;
  const info = (c.info ?? {}) as { w?: number; h?: number; size?: number; mimetype?: string; thumbnail_file?: unknown; thumbnail_info?: { w?: number; h?: number; mimetype?: string } };
  const name = typeof c.filename === "string" && c.filename ? c.filename : String(c.body ?? "file");
  const mimetype = info.mimetype ?? "application/octet-stream";
  const thumbFile = encryptedFileOf(info.thumbnail_file);
  const [full, setFull] = useState(false);
  const [video, setVideo] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const w = info.thumbnail_info?.w ?? info.w;
  const h = info.thumbnail_info?.h ?? info.h;
  const fail = (err: unknown) => {
    console.warn("salon: an encrypted attachment could not be decrypted", err);
    setError(tc("e2e.attachmentFailed"));
  };

  if (c.msgtype === MsgType.Image) {
    return (
      <div class="media image" data-encrypted="true">
        <DecryptedImage
          file={thumbFile ?? file}
          mimetype={thumbFile ? (info.thumbnail_info?.mimetype ?? "image/jpeg") : mimetype}
          alt={name}
          width={w}
          height={h}
          class="thumb"
          onClick={() => setFull(true)}
        />
        {full && (
          <Dialog title={name} onClose={() => setFull(false)} wide id="image-view">
            <DecryptedImage file={file} mimetype={mimetype} alt={name} class="full" />
            <p>
              <button type="button" onClick={() => downloadDecrypted(client, file, mimetype, name).catch(fail)}>
                {t("msg.download")}
              </button>
            </p>
          </Dialog>
        )}
        {error && <p class="error">{error}</p>}
      </div>
    );
  }
  if (c.msgtype === MsgType.Video) {
    const play = async () => {
      try {
        setVideo(await decryptedBlobUrl(client, file, mimetype));
      } catch (err) {
        fail(err);
      }
    };
    return (
      <div class="media video" data-encrypted="true">
        {video ? (
          <video src={video} controls autoplay aria-label={name} />
        ) : thumbFile ? (
          <DecryptedImage file={thumbFile} mimetype={info.thumbnail_info?.mimetype ?? "image/jpeg"} alt={t("msg.play")} width={w} height={h} class="thumb" onClick={() => void play()} />
        ) : (
          <button type="button" class="play" onClick={() => void play()}>
            <Icon name="play" /> {t("msg.play")}
          </button>
        )}
        {error && <p class="error">{error}</p>}
      </div>
    );
  }
  return (
    <div class="file-card" data-encrypted="true">
      <span class="file-icon" aria-hidden="true">
        <Icon name="file" />
      </span>
      <span class="file-meta">
        <span class="file-name">{name}</span>
        <small class="muted">
          {info.mimetype ?? ""}
          {info.size !== undefined ? ` · ${formatBytes(info.size)}` : ""}
        </small>
      </span>
      <button type="button" class="small" aria-label={t("msg.downloadFile", { name })} onClick={() => downloadDecrypted(client, file, mimetype, name).catch(fail)}>
        {t("msg.download")}
      </button>
      {error && <p class="error">{error}</p>}
    </div>
  );
}
