// Hooks that re-render views from the SDK's state when it changes.
import type { MatrixClient } from "matrix-js-sdk";
import { createContext } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";

export const ClientContext = createContext<MatrixClient | null>(null);

export function useClient(): MatrixClient {
  const c = useContext(ClientContext);
  if (!c) throw new Error("useClient outside a signed-in view");
  return c;
}

interface Emitter {
  on(event: string, fn: (...args: never[]) => void): unknown;
  off(event: string, fn: (...args: never[]) => void): unknown;
}

// One animation frame for every view that has something to redraw: their
// updates then reach Preact together, which renders each component once,
// parents first, instead of once per listener (a 200-room sync touches
// every view).
const due = new Set<() => void>();
let frame = 0;

function redrawNextFrame(fn: () => void): void {
  due.add(fn);
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    const fns = [...due];
    due.clear();
    for (const f of fns) f();
  });
}

/**
 * Re-renders the component, at most once a frame, when the emitter emits
 * any of the events. The SDK keeps the state; views read it while
 * rendering.
 */
export function useEmitterTick(emitter: Emitter | null | undefined, events: readonly string[]): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!emitter) return;
    let alive = true;
    const redraw = () => {
      if (alive) setTick((n) => n + 1);
    };
    const bump = () => redrawNextFrame(redraw);
    for (const e of events) emitter.on(e, bump);
    return () => {
      alive = false;
      due.delete(redraw);
      for (const e of events) emitter.off(e, bump);
    };
    // The event list is a constant at every call site.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [emitter]);
  return tick;
}

/** The value of a promise, re-run when deps change; null until it settles. */
export function useAsync<T>(fn: () => Promise<T>, deps: unknown[]): { value: T | null; error: unknown } {
  const [state, setState] = useState<{ value: T | null; error: unknown }>({ value: null, error: null });
  useEffect(() => {
    let alive = true;
    setState({ value: null, error: null });
    fn().then(
      (value) => alive && setState({ value, error: null }),
      (error: unknown) => alive && setState({ value: null, error }),
    );
    return () => {
      alive = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return state;
}

/** Whether the window is phone-sized (the layout shows one pane at a time). */
export function useNarrow(): boolean {
  const q = "(max-width: 720px)";
  const [narrow, setNarrow] = useState(() => window.matchMedia(q).matches);
  useEffect(() => {
    const mq = window.matchMedia(q);
    const h = () => setNarrow(mq.matches);
    mq.addEventListener("change", h);
    return () => mq.removeEventListener("change", h);
  }, []);
  return narrow;
}
