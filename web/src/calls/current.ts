// The call the person is in, at most one, kept while they move between
// rooms. A light module (no media library): the layout shows an "in a
// call" bar from it without loading livekit-client.
import type { Room } from "matrix-js-sdk";

export interface OngoingCall {
  readonly room: Room;
  leave(): Promise<void>;
  dispose(): void;
}

let current: OngoingCall | null = null;
const listeners = new Set<() => void>();

export function currentCall(): OngoingCall | null {
  return current;
}

/** Makes call the current one; a previous call is left first. */
export async function setCurrentCall(call: OngoingCall | null): Promise<void> {
  const prev = current;
  if (prev === call) return;
  current = call;
  for (const fn of [...listeners]) fn();
  if (prev) {
    await prev.leave();
    prev.dispose();
  }
}

export function onCurrentCallChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
