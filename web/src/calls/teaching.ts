// Teaching mode and raised hands, read from and written to the room: no
// media here. The contract, shared with the server (which derives each
// participant's LiveKit grant from it):
//
//   - State event org.salonhq.call.teaching, state key "", content
//     {"enabled": true, "speakers": ["@user:server", ...]}; missing, empty
//     or enabled: false means off. When on, only moderators (power level
//     at least the room's "kick" level) and the listed speakers may publish
//     microphone, camera or screen; everyone else listens.
//   - A raised hand is Element Call's: an m.reaction annotating the
//     raiser's own call-membership state event with the key "🖐️";
//     lowering it redacts that reaction.
import { EventType, RelationType, type MatrixClient, type MatrixEvent, type Room } from "matrix-js-sdk";
import type { CallMembership } from "matrix-js-sdk/lib/matrixrtc";

export const TeachingEventType = "org.salonhq.call.teaching";
export const HandKey = "🖐️";

export interface Teaching {
  enabled: boolean;
  speakers: string[];
}

export function teachingOf(room: Room): Teaching {
  const c = room.currentState.getStateEvents(TeachingEventType, "")?.getContent() ?? {};
  const speakers = Array.isArray(c.speakers) ? c.speakers.filter((s: unknown): s is string => typeof s === "string") : [];
  return { enabled: c.enabled === true, speakers };
}

function powerLevels(room: Room): Record<string, unknown> {
  return room.currentState.getStateEvents(EventType.RoomPowerLevels, "")?.getContent() ?? {};
}

function num(v: unknown, fallback: number): number {
  return typeof v === "number" && Number.isFinite(v) ? v : fallback;
}

/**
 * The creators of a room whose version gives them infinite power (room
 * version 12, MSC4289): the create event's sender and its
 * additional_creators. They are never listed in the power levels. Empty in
 * earlier versions.
 */
export function privilegedCreators(room: Room): Set<string> {
  const creators = new Set<string>();
  const create = room.currentState.getStateEvents(EventType.RoomCreate, "");
  const version = Number(create?.getContent().room_version);
  if (!create || !Number.isInteger(version) || version < 12) return creators;
  const sender = create.getSender();
  if (sender) creators.add(sender);
  const extra: unknown = create.getContent().additional_creators;
  if (Array.isArray(extra)) extra.forEach((u) => typeof u === "string" && creators.add(u));
  return creators;
}

export function userLevel(room: Room, userId: string): number {
  if (privilegedCreators(room).has(userId)) return Infinity;
  const pl = powerLevels(room);
  const users = (pl.users ?? {}) as Record<string, unknown>;
  return num(users[userId], num(pl.users_default, 0));
}

/** Moderators of the call: who may kick (the server's CallPermissions.Moderate). */
export function isModerator(room: Room, userId: string): boolean {
  return userLevel(room, userId) >= num(powerLevels(room).kick, 50);
}

/** Whether the user may change teaching mode (the event type's power level). */
export function mayChangeTeaching(room: Room, userId: string): boolean {
  return room.currentState.maySendStateEvent(TeachingEventType, userId);
}

/** On the stage: everyone when teaching mode is off; else moderators and speakers. */
export function onStage(room: Room, teaching: Teaching, userId: string): boolean {
  return !teaching.enabled || isModerator(room, userId) || teaching.speakers.includes(userId);
}

async function putTeaching(client: MatrixClient, room: Room, t: Teaching): Promise<void> {
  // A custom state type: the SDK's typed map does not know it.
  await (client.sendStateEvent as (r: string, type: string, c: object, k: string) => Promise<unknown>)(room.roomId, TeachingEventType, t, "");
}

export function setTeaching(client: MatrixClient, room: Room, enabled: boolean): Promise<void> {
  const cur = teachingOf(room);
  return putTeaching(client, room, { enabled, speakers: enabled ? cur.speakers : [] });
}

/** Lets a listener speak (adds them to speakers) or takes it back. */
export function setSpeaker(client: MatrixClient, room: Room, userId: string, speak: boolean): Promise<void> {
  const cur = teachingOf(room);
  const speakers = cur.speakers.filter((s) => s !== userId);
  if (speak) speakers.push(userId);
  return putTeaching(client, room, { enabled: true, speakers });
}

/** The hand reactions in the live timeline, by the membership event they annotate. */
function handReactions(room: Room): MatrixEvent[] {
  return room
    .getLiveTimeline()
    .getEvents()
    .filter((ev) => {
      if (ev.getType() !== EventType.Reaction || ev.isRedacted() || ev.status !== null) return false;
      const rel = ev.getContent()["m.relates_to"];
      return rel?.rel_type === RelationType.Annotation && rel.key === HandKey;
    });
}

/**
 * Raised hands: for each current membership whose sender annotated it
 * with the hand, the reaction (the oldest first, the order of the queue).
 */
export function raisedHands(room: Room, memberships: CallMembership[]): { membership: CallMembership; reaction: MatrixEvent }[] {
  const reactions = handReactions(room);
  const out: { membership: CallMembership; reaction: MatrixEvent }[] = [];
  for (const m of memberships) {
    const r = reactions.find((ev) => ev.getSender() === m.sender && ev.getContent()["m.relates_to"]?.event_id === m.eventId);
    if (r) out.push({ membership: m, reaction: r });
  }
  return out.sort((a, b) => a.reaction.getTs() - b.reaction.getTs());
}

export async function raiseHand(client: MatrixClient, room: Room, own: CallMembership): Promise<void> {
  await client.sendEvent(room.roomId, EventType.Reaction, {
    "m.relates_to": { rel_type: RelationType.Annotation, event_id: own.eventId, key: HandKey },
  });
}

export async function lowerHand(client: MatrixClient, room: Room, reaction: MatrixEvent): Promise<void> {
  const id = reaction.getId();
  if (id) await client.redactEvent(room.roomId, id);
}
