// Attachments: upload with progress through the SDK, a thumbnail made in
// the browser for large images and for videos, then the m.room.message.
import { MsgType, type MatrixClient } from "matrix-js-sdk";
import { uploadFor } from "./crypto/attachments";

export interface UploadProgress {
  id: number;
  name: string;
  loaded: number;
  total: number;
  error: string | null;
}

interface Thumb {
  blob: Blob;
  w: number;
  h: number;
}

const thumbMax = { w: 800, h: 600 };

function fit(w: number, h: number): { w: number; h: number } {
  const s = Math.min(1, thumbMax.w / w, thumbMax.h / h);
  return { w: Math.max(1, Math.round(w * s)), h: Math.max(1, Math.round(h * s)) };
}

async function drawThumb(source: CanvasImageSource, w: number, h: number, type: string): Promise<Thumb | null> {
  const size = fit(w, h);
  const canvas = document.createElement("canvas");
  canvas.width = size.w;
  canvas.height = size.h;
  const ctx = canvas.getContext("2d");
  if (!ctx) return null;
  ctx.drawImage(source, 0, 0, size.w, size.h);
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, type, 0.8));
  return blob ? { blob, ...size } : null;
}

async function imageInfo(file: File): Promise<{ w: number; h: number; thumb: Thumb | null } | null> {
  try {
    const bmp = await createImageBitmap(file);
    const { width: w, height: h } = bmp;
    // Small images are their own thumbnail.
    const thumb = w > thumbMax.w || h > thumbMax.h ? await drawThumb(bmp, w, h, file.type === "image/png" ? "image/png" : "image/jpeg") : null;
    bmp.close();
    return { w, h, thumb };
  } catch {
    return null;
  }
}

async function videoInfo(file: File): Promise<{ w: number; h: number; duration: number; thumb: Thumb | null } | null> {
  const url = URL.createObjectURL(file);
  try {
    const v = document.createElement("video");
    v.muted = true;
    v.preload = "metadata";
    v.src = url;
    await new Promise<void>((resolve, reject) => {
      v.onloadeddata = () => resolve();
      v.onerror = () => reject(new Error("video"));
      setTimeout(() => reject(new Error("timeout")), 5000);
    });
    const thumb = await drawThumb(v, v.videoWidth, v.videoHeight, "image/jpeg");
    return { w: v.videoWidth, h: v.videoHeight, duration: Math.round(v.duration * 1000), thumb };
  } catch {
    return null;
  } finally {
    URL.revokeObjectURL(url);
  }
}

let nextId = 1;

/**
 * Uploads the file and sends it to the room. progress is called as bytes go
 * out; the returned promise settles once the event is sent.
 */
export async function sendFile(
  client: MatrixClient,
  roomId: string,
  file: File,
  progress: (p: UploadProgress) => void,
  relatesTo?: Record<string, unknown>,
): Promise<void> {
  const p: UploadProgress = { id: nextId++, name: file.name, loaded: 0, total: file.size, error: null };
  progress({ ...p });
  const type = file.type || "application/octet-stream";
  const info: Record<string, unknown> = { mimetype: type, size: file.size };
  let msgtype: string = MsgType.File;
  let thumb: Thumb | null = null;
  if (type.startsWith("image/")) {
    const ii = await imageInfo(file);
    if (ii) {
      msgtype = MsgType.Image;
      info.w = ii.w;
      info.h = ii.h;
      thumb = ii.thumb;
    }
  } else if (type.startsWith("video/")) {
    const vi = await videoInfo(file);
    msgtype = MsgType.Video;
    if (vi) {
      info.w = vi.w;
      info.h = vi.h;
      info.duration = vi.duration;
      thumb = vi.thumb;
    }
  } else if (type.startsWith("audio/")) {
    msgtype = MsgType.Audio;
  }
  // In an encrypted room both are encrypted here first (src/crypto/attachments.ts).
  if (thumb) {
    const up = await uploadFor(client, roomId, thumb.blob, { name: `thumbnail-${file.name}`, type: thumb.blob.type, includeFilename: false });
    if ("file" in up) info.thumbnail_file = up.file;
    else info.thumbnail_url = up.url;
    info.thumbnail_info = { w: thumb.w, h: thumb.h, mimetype: thumb.blob.type, size: thumb.blob.size };
  }
  const up = await uploadFor(client, roomId, file, {
    name: file.name,
    type,
    progressHandler: ({ loaded, total }) => {
      p.loaded = loaded;
      p.total = total || file.size;
      progress({ ...p });
    },
  });
  const content: Record<string, unknown> = { msgtype, body: file.name, filename: file.name, ...up, info };
  if (relatesTo) content["m.relates_to"] = relatesTo;
  await client.sendMessage(roomId, content as never);
}

/** The server's upload limit in bytes, when it says one (m.upload.size). */
export async function uploadLimit(client: MatrixClient): Promise<number | null> {
  try {
    const cfg = await client.getMediaConfig(true);
    return typeof cfg["m.upload.size"] === "number" ? cfg["m.upload.size"] : null;
  } catch {
    return null;
  }
}
