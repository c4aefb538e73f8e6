// One-to-one calls in direct conversations, over Matrix's legacy VoIP
// (m.call.invite / answer / candidates / hangup as room events, WebRTC
// between the two browsers, relayed through the TURN server that
// /_matrix/client/v3/voip/turnServer names: Salon's embedded relay).
//
// matrix-js-sdk does the protocol (MatrixCall); this module keeps which
// call the person sees: at most one call at a time, plus an incoming one
// that rings until it is accepted or declined. The views read it and
// re-render on "change".
import { forgetHangup, prepareHangup, sendPreparedHangup } from "../crypto/callHangup";
import { KnownMembership, type MatrixClient, type Room } from "matrix-js-sdk";
import { CallDirection, CallErrorCode, CallEvent, CallParty, CallState, CallType, createNewMatrixCall, type MatrixCall } from "matrix-js-sdk/lib/webrtc/call";
import { CallEventHandlerEvent } from "matrix-js-sdk/lib/webrtc/callEventHandler";

/** What the person is told about a call. */
export type CallPhase = "calling" | "ringing" | "connecting" | "connected" | "ended";

export function phaseOf(call: MatrixCall): CallPhase {
  switch (call.state) {
    case CallState.Ringing:
      return "ringing";
    case CallState.Connected:
      return "connected";
    case CallState.Ended:
      return "ended";
    case CallState.Fledgling:
    case CallState.WaitLocalMedia:
    case CallState.CreateOffer:
    case CallState.InviteSent:
      // An outgoing call rings at the other end until it is answered; an
      // incoming one we accepted is getting its media ready.
      return call.direction === CallDirection.Inbound ? "connecting" : "calling";
    default:
      return "connecting";
  }
}

/** Why a call ended, in the few cases worth telling apart. */
export type EndReason = "hangup" | "declined" | "noAnswer" | "busy" | "failed" | "lost" | "noMedia" | "elsewhere";

/**
 * Why the call ended. before is its state just before it ended: an
 * outgoing call the other side ended while it rang was declined
 * (m.call.reject, or a plain hangup from older clients); a connected call
 * whose connection failed was lost.
 */
export function endReasonOf(call: MatrixCall, before?: CallState): EndReason {
  if (before === CallState.InviteSent && call.hangupParty === CallParty.Remote && call.hangupReason === CallErrorCode.UserHangup) return "declined";
  switch (call.hangupReason) {
    case CallErrorCode.InviteTimeout:
      return "noAnswer";
    case CallErrorCode.UserBusy:
      return "busy";
    case CallErrorCode.IceFailed:
      return before === CallState.Connected ? "lost" : "failed";
    case CallErrorCode.LocalOfferFailed:
    case CallErrorCode.CreateOffer:
    case CallErrorCode.CreateAnswer:
    case CallErrorCode.SetRemoteDescription:
    case CallErrorCode.SetLocalDescription:
    case CallErrorCode.SendInvite:
    case CallErrorCode.SendAnswer:
    case CallErrorCode.SignallingFailed:
      return "failed";
    case CallErrorCode.NoUserMedia:
      return "noMedia";
    case CallErrorCode.AnsweredElsewhere:
      return "elsewhere";
    default:
      return "hangup";
  }
}

/**
 * Whether every connection should go through the TURN relay (the SDK's
 * forceTURN): set by localStorage["salon.forceTURN"] or ?forceTURN=1 in
 * the address. For people who do not want their address known to the
 * other side, and for the tests, which check that the relay carries the
 * media.
 */
export function forceTurnWanted(): boolean {
  try {
    if (new URLSearchParams(window.location.search).get("forceTURN") === "1") return true;
    return localStorage.getItem("salon.forceTURN") !== null;
  } catch {
    return false;
  }
}

/** The other person of a room with exactly two joined members, else null. */
export function callPartner(client: MatrixClient, room: Room): string | null {
  if (room.isSpaceRoom() || room.getMyMembership() !== KnownMembership.Join) return null;
  if (room.getJoinedMemberCount() !== 2) return null;
  const me = client.getUserId();
  const other = room.getJoinedMembers().find((m) => m.userId !== me);
  if (other) return other.userId;
  // Members not loaded yet (lazy loading): the SDK's guess from the
  // summary's heroes and our own membership event.
  const guess = room.guessDMUserId();
  return guess && guess !== me ? guess : null;
}

type Listener = () => void;

export class DirectCalls {
  /** The call on screen: ongoing, or ended and not dismissed yet. */
  current: MatrixCall | null = null;
  /** A call ringing here that was neither accepted nor declined. */
  incoming: MatrixCall | null = null;
  /** The last error a call reported (no camera, signalling failed…). */
  error: string | null = null;
  /** The other person of each call, by call ID (an outgoing call knows it before the answer). */
  private partners = new Map<string, string>();
  /** The state each ended call was in when it ended. */
  private endedFrom = new Map<string, CallState>();
  /** Seconds since each call connected. */
  private lengths = new Map<string, number>();
  private listeners = new Set<Listener>();
  private watched = new WeakSet<MatrixCall>();

  constructor(readonly client: MatrixClient) {
    client.setForceTURN(forceTurnWanted());
    client.on(CallEventHandlerEvent.Incoming, this.onIncoming);
    window.addEventListener("pagehide", this.onPageHide);
  }

  /** Stops listening and hangs up whatever is under way (sign-out). */
  close(): void {
    this.client.off(CallEventHandlerEvent.Incoming, this.onIncoming);
    window.removeEventListener("pagehide", this.onPageHide);
    this.hangupAll();
    this.listeners.clear();
  }

  private hangupAll(): void {
    for (const call of [this.current, this.incoming]) {
      if (call && call.state !== CallState.Ended) call.hangup(CallErrorCode.UserHangup, false);
    }
  }

  // Closing the tab: send the hang-up now rather than leave the other side
  // waiting for the SDK's 30 s connection timeout. The browser may cut the
  // request short, in which case that timeout still ends the call.
  // In an encrypted room the hang-up was encrypted when the call
  // connected (src/crypto/callHangup.ts): sent first, as is.
  private readonly onPageHide = () => {
    for (const call of [this.current, this.incoming]) {
      if (call && call.state !== CallState.Ended) sendPreparedHangup(this.client, call);
    }
    this.hangupAll();
  };

  // The on/off pair useEmitterTick expects.
  on(_event: "change", fn: Listener): void {
    this.listeners.add(fn);
  }

  off(_event: "change", fn: Listener): void {
    this.listeners.delete(fn);
  }

  private changed = (): void => {
    for (const fn of [...this.listeners]) fn();
  };

  /** Whether a call is ringing or under way (another cannot start). */
  busy(): boolean {
    return (this.current !== null && this.current.state !== CallState.Ended) || this.incoming !== null;
  }

  partnerOf(call: MatrixCall): string | null {
    return call.getOpponentMember()?.userId ?? this.partners.get(call.callId) ?? call.invitee ?? null;
  }

  endReason(call: MatrixCall): EndReason {
    return endReasonOf(call, this.endedFrom.get(call.callId));
  }

  lengthOf(call: MatrixCall): number {
    return this.lengths.get(call.callId) ?? 0;
  }

  isVideo(call: MatrixCall): boolean {
    return call.type === CallType.Video;
  }

  private watch(call: MatrixCall): void {
    if (this.watched.has(call)) return;
    this.watched.add(call);
    call.on(CallEvent.State, (state, old) => {
      if (state === CallState.Ended) this.endedFrom.set(call.callId, old);
      if (state === CallState.Connected) void prepareHangup(this.client, call);
      if (state === CallState.Ended) forgetHangup(call);
      this.changed();
    });
    call.on(CallEvent.FeedsChanged, this.changed);
    call.on(CallEvent.LengthChanged, (seconds) => {
      this.lengths.set(call.callId, seconds);
      this.changed();
    });
    call.on(CallEvent.RemoteHoldUnhold, this.changed);
    call.on(CallEvent.Error, (err) => {
      this.error = err.message;
      this.changed();
    });
    call.on(CallEvent.Hangup, () => {
      // A call that rang here and was never answered leaves no trace
      // on screen; one that was shown stays until dismissed.
      if (this.incoming === call) this.incoming = null;
      this.changed();
    });
  }

  private onIncoming = (call: MatrixCall): void => {
    if (this.busy()) {
      call.hangup(CallErrorCode.UserBusy, false);
      return;
    }
    this.watch(call);
    this.incoming = call;
    this.changed();
  };

  /** Calls the other person of a two-person room, with or without video. */
  async place(room: Room, video: boolean): Promise<void> {
    if (this.busy()) return;
    const partner = callPartner(this.client, room);
    if (!partner) return;
    // createNewMatrixCall copies the TURN servers the client has now:
    // make sure they are there and fresh first.
    await this.client.checkTurnServers().catch(() => false);
    const call = createNewMatrixCall(this.client, room.roomId, { invitee: partner });
    if (!call) {
      this.error = "WebRTC is not available in this browser";
      this.changed();
      return;
    }
    this.partners.set(call.callId, partner);
    this.error = null;
    this.watch(call);
    this.current = call;
    this.changed();
    try {
      await (video ? call.placeVideoCall() : call.placeVoiceCall());
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
      if (call.state !== CallState.Ended) call.hangup(CallErrorCode.UserHangup, false);
      this.changed();
    }
  }

  /** Answers the ringing call with what it offers (video if the caller sends video). */
  async accept(): Promise<void> {
    const call = this.incoming;
    if (!call) return;
    this.incoming = null;
    this.error = null;
    this.current = call;
    this.changed();
    try {
      await call.answer();
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
      if (call.state !== CallState.Ended) call.hangup(CallErrorCode.UserHangup, false);
    }
    this.changed();
  }

  decline(): void {
    const call = this.incoming;
    if (!call) return;
    this.incoming = null;
    if (call.state === CallState.Ringing) call.reject();
    else if (call.state !== CallState.Ended) call.hangup(CallErrorCode.UserHangup, false);
    this.changed();
  }

  hangup(): void {
    const call = this.current;
    if (call && call.state !== CallState.Ended) call.hangup(CallErrorCode.UserHangup, false);
    this.changed();
  }

  /** Takes an ended call off the screen. */
  dismiss(): void {
    if (this.current?.state === CallState.Ended) {
      this.partners.delete(this.current.callId);
      this.lengths.delete(this.current.callId);
      this.endedFrom.delete(this.current.callId);
      this.current = null;
      this.error = null;
      this.changed();
    }
  }

  async toggleMicrophone(): Promise<void> {
    const call = this.current;
    if (!call) return;
    await call.setMicrophoneMuted(!call.isMicrophoneMuted());
    this.changed();
  }

  async toggleCamera(): Promise<void> {
    const call = this.current;
    if (!call) return;
    await call.setLocalVideoMuted(!call.isLocalVideoMuted());
    this.changed();
  }
}

// One store per signed-in client, made on first use.
const stores = new WeakMap<MatrixClient, DirectCalls>();

export function directCallsFor(client: MatrixClient): DirectCalls {
  let s = stores.get(client);
  if (!s) {
    s = new DirectCalls(client);
    stores.set(client, s);
  }
  return s;
}

/** Ends the client's calls and forgets its store (sign-out). */
export function closeDirectCalls(client: MatrixClient): void {
  stores.get(client)?.close();
  stores.delete(client);
}
