// Our media key, delivered to every member device of an encrypted call
// once our crypto can reach it.
//
// matrix-js-sdk's MatrixRTC session sends each of our media keys once to
// the call's members (ToDeviceKeyTransport over encryptAndSendToDevice),
// and then counts it as shared with all of them. The Rust crypto encrypts
// only for devices whose keys it already has: a device whose list is still
// being fetched — a member who just joined, or anyone after the SDK
// re-joins and makes a new key while the machine is slow — is silently
// left out, and its owner never decrypts our media. So the call keeps its
// own account: each member device is sent the current key (again) as soon
// as the crypto knows it, once per key and membership. A device that
// already had it from the SDK gets a duplicate, which the receiving SDK
// takes as the same key.
//
// This module only decides; calls/group.ts does the sending. It imports
// nothing at run time, so a Node test loads it alone.

/** A member device of the call, as its MatrixRTC membership names it. */
export interface MemberDevice {
  userId: string;
  deviceId: string;
  /** When the membership was made: a re-join is a new membership, whose client lost our keys. */
  membershipTs: number;
}

/** Our current media key. */
export interface OwnKey {
  index: number;
  key: Uint8Array;
}

function slot(m: MemberDevice): string {
  return `${m.userId}\u0000${m.deviceId}\u0000${m.membershipTs}`;
}

function keyId(k: OwnKey): string {
  let s = `${k.index}:`;
  for (const b of k.key) s += b.toString(16).padStart(2, "0");
  return s;
}

export class KeyRedelivery {
  private current: OwnKey | null = null;
  /** The key index each membership was sent while its device was known. */
  private readonly delivered = new Map<string, number>();
  /** Our keys had so far (index and bytes): one re-emitted later is not new. */
  private readonly had = new Set<string>();

  constructor(private readonly self: { userId: string; deviceId: string }) {}

  /**
   * One of our keys, as the SDK emits it. A key not had before is the
   * current one, due to every member; one had before (the SDK re-emits
   * old keys on request) changes nothing. Returns whether it was new.
   */
  setKey(key: OwnKey): boolean {
    const id = keyId(key);
    if (this.had.has(id)) return false;
    this.had.add(id);
    this.current = { index: key.index, key: key.key.slice() };
    this.delivered.clear();
    return true;
  }

  /** A new session of the call (joining again): the SDK starts its keys anew, at index 0. */
  reset(): void {
    this.current = null;
    this.delivered.clear();
    this.had.clear();
  }

  get key(): OwnKey | null {
    return this.current;
  }

  /**
   * The member devices that must be sent the current key now: every other
   * member whose device `known` says the crypto has keys for, and that was
   * not yet sent this key index for this membership. `unknown` lists the
   * users with such a device the crypto does not know yet (their device
   * lists are to be fetched; ask again when they are).
   */
  due(members: readonly MemberDevice[], known: (userId: string, deviceId: string) => boolean): { targets: MemberDevice[]; unknown: string[] } {
    const targets: MemberDevice[] = [];
    const unknown = new Set<string>();
    const cur = this.current;
    if (!cur) return { targets, unknown: [] };
    const live = new Set<string>();
    for (const m of members) {
      if (m.userId === this.self.userId && m.deviceId === this.self.deviceId) continue;
      const s = slot(m);
      if (live.has(s)) continue;
      live.add(s);
      if (this.delivered.get(s) === cur.index) continue;
      if (known(m.userId, m.deviceId)) targets.push(m);
      else unknown.add(m.userId);
    }
    // Memberships that ended are forgotten: a member who comes back has a
    // new membership, and is sent the key again.
    for (const s of [...this.delivered.keys()]) if (!live.has(s)) this.delivered.delete(s);
    return { targets, unknown: [...unknown] };
  }

  /** Records that `targets` were sent the key of `index`. */
  sent(targets: readonly MemberDevice[], index: number): void {
    for (const m of targets) this.delivered.set(slot(m), index);
  }
}
