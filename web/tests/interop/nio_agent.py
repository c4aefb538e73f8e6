#!/usr/bin/python3
"""A matrix-nio (libolm) client driven over stdin/stdout, for the E2EE
interop test (nio.test.mjs): a second end-to-end encryption implementation,
independent of matrix-js-sdk's Rust crypto (vodozemac).

Run with Debian's interpreter (/usr/bin/python3) and packages
python3-matrix-nio and python3-olm:

    nio_agent.py HOMESERVER USER PASSWORD STORE_DIR

It logs in, uploads its device keys and syncs for ever. Commands, one JSON
object per line on stdin:
    {"cmd": "join", "room": ROOM_ID}
    {"cmd": "send", "room": ROOM_ID, "body": TEXT}   (encrypted if the room is)
    {"cmd": "quit"}
Reports, one JSON object per line on stdout:
    {"event": "ready", "user_id": ..., "device_id": ...}
    {"event": "joined", "room": ...}
    {"event": "message", "room": ..., "sender": ..., "body": ..., "encrypted": bool}
    {"event": "undecryptable", "room": ..., "sender": ..., "session_id": ...}
    {"event": "sent", "room": ..., "event_id": ...}
    {"event": "error", "message": ...}
"""

import asyncio
import json
import sys
import threading
import traceback

from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinError,
    KeysUploadResponse,
    LoginResponse,
    MegolmEvent,
    RoomMessageText,
    RoomSendResponse,
)


def report(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


async def main(homeserver, user, password, store_dir):
    config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
    client = AsyncClient(homeserver, user, store_path=store_dir, config=config)
    try:
        return await run(client, password)
    finally:
        await client.close()


async def run(client, password):
    resp = await client.login(password, device_name="nio interop")
    if not isinstance(resp, LoginResponse):
        report(event="error", message=f"login: {resp}")
        return 1
    if client.should_upload_keys:
        up = await client.keys_upload()
        if not isinstance(up, KeysUploadResponse):
            report(event="error", message=f"keys_upload: {up}")
            return 1

    async def on_text(room, event):
        report(event="message", room=room.room_id, sender=event.sender, body=event.body,
               encrypted=bool(getattr(event, "decrypted", False)))

    async def on_undecryptable(room, event):
        report(event="undecryptable", room=room.room_id, sender=event.sender, session_id=event.session_id)

    client.add_event_callback(on_text, RoomMessageText)
    client.add_event_callback(on_undecryptable, MegolmEvent)

    # The first sync before anything else: the device is known and synced
    # when the test is told it is ready.
    await client.sync(timeout=0, full_state=True)
    report(event="ready", user_id=client.user_id, device_id=client.device_id)

    commands = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def read_stdin():
        for line in sys.stdin:
            line = line.strip()
            if line:
                loop.call_soon_threadsafe(commands.put_nowait, json.loads(line))
        loop.call_soon_threadsafe(commands.put_nowait, {"cmd": "quit"})

    threading.Thread(target=read_stdin, daemon=True).start()
    syncer = asyncio.create_task(client.sync_forever(timeout=5000, full_state=True))

    try:
        while True:
            cmd = await commands.get()
            try:
                if cmd["cmd"] == "quit":
                    break
                if cmd["cmd"] == "join":
                    r = await client.join(cmd["room"])
                    if isinstance(r, JoinError):
                        report(event="error", message=f"join: {r}")
                        continue
                    # Wait for the room to appear in a sync, with its state
                    # (m.room.encryption among it).
                    for _ in range(200):
                        if cmd["room"] in client.rooms:
                            break
                        await asyncio.sleep(0.1)
                    report(event="joined", room=cmd["room"], encrypted=client.rooms[cmd["room"]].encrypted)
                elif cmd["cmd"] == "send":
                    if client.should_query_keys:
                        await client.keys_query()
                    r = await client.room_send(
                        cmd["room"], "m.room.message", {"msgtype": "m.text", "body": cmd["body"]},
                        ignore_unverified_devices=True,
                    )
                    if isinstance(r, RoomSendResponse):
                        report(event="sent", room=cmd["room"], event_id=r.event_id)
                    else:
                        report(event="error", message=f"send: {r}")
            except Exception:  # report and keep serving: the test decides
                report(event="error", message=traceback.format_exc())
    finally:
        syncer.cancel()
        try:
            await syncer
        except (asyncio.CancelledError, Exception):
            pass
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.stderr.write(__doc__)
        sys.exit(2)
    sys.exit(asyncio.run(main(*sys.argv[1:])))
