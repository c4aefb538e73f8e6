package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/salonhq/salon/homeserver/keys"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// keyBackupRoutes serves server-side key backups (spec v1.16,
// "Server-side key backups").
func (a *API) keyBackupRoutes() {
	if a.p.KeyBackups == nil {
		return
	}
	a.handle(v3+"/room_keys/version", methods{
		http.MethodPost: a.authed(a.createKeyBackup),
		http.MethodGet:  a.authed(a.latestKeyBackup),
	})
	a.handle(v3+"/room_keys/version/{version}", methods{
		http.MethodGet:    a.authed(a.getKeyBackup),
		http.MethodPut:    a.authed(a.putKeyBackup),
		http.MethodDelete: a.authed(a.deleteKeyBackup),
	})
	for _, p := range []string{"/room_keys/keys", "/room_keys/keys/{roomId}", "/room_keys/keys/{roomId}/{sessionId}"} {
		a.handle(v3+p, methods{
			http.MethodGet:    a.authed(a.getBackupKeys),
			http.MethodPut:    a.authed(a.putBackupKeys),
			http.MethodDelete: a.authed(a.deleteBackupKeys),
		})
	}
}

func (a *API) createKeyBackup(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		Algorithm *string         `json:"algorithm"`
		AuthData  json.RawMessage `json:"auth_data"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	v, err := a.p.KeyBackups.Create(r.Context(), dev.UserID, req.Algorithm, req.AuthData)
	if err != nil {
		return err
	}
	return reply(w, map[string]string{"version": v})
}

func (a *API) latestKeyBackup(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	b, err := a.p.KeyBackups.Latest(r.Context(), dev.UserID)
	if err != nil {
		return err
	}
	return reply(w, b)
}

func (a *API) getKeyBackup(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	b, err := a.p.KeyBackups.Get(r.Context(), dev.UserID, r.PathValue("version"))
	if err != nil {
		return err
	}
	return reply(w, b)
}

func (a *API) putKeyBackup(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req keys.VersionUpdate
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if err := a.p.KeyBackups.Update(r.Context(), dev.UserID, r.PathValue("version"), req); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) deleteKeyBackup(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	if err := a.p.KeyBackups.Delete(r.Context(), dev.UserID, r.PathValue("version")); err != nil {
		return err
	}
	return reply(w, empty)
}

// backupKeysRequest is the version and the room and session a
// /room_keys/keys request names.
func backupKeysRequest(r *http.Request) (string, store.BackupKeysFilter, error) {
	q := r.URL.Query()
	if !q.Has("version") {
		return "", store.BackupKeysFilter{}, missing("version")
	}
	return q.Get("version"), store.BackupKeysFilter{RoomID: r.PathValue("roomId"), SessionID: r.PathValue("sessionId")}, nil
}

// putBackupKeys takes the three body shapes: {"rooms": {...}} for all
// rooms, {"sessions": {...}} for one room, one KeyData for one session.
func (a *API) putBackupKeys(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	version, f, err := backupKeysRequest(r)
	if err != nil {
		return err
	}
	var rooms map[string]keys.RoomKeys
	switch {
	case f.SessionID != "":
		var k keys.KeyData
		if err := a.decode(r, &k, false); err != nil {
			return err
		}
		rooms = map[string]keys.RoomKeys{f.RoomID: {Sessions: map[string]keys.KeyData{f.SessionID: k}}}
	case f.RoomID != "":
		var rk keys.RoomKeys
		if err := a.decode(r, &rk, false); err != nil {
			return err
		}
		if rk.Sessions == nil {
			return mxerr.BadJSONf("sessions must be an object")
		}
		rooms = map[string]keys.RoomKeys{f.RoomID: rk}
	default:
		var req struct {
			Rooms map[string]keys.RoomKeys `json:"rooms"`
		}
		if err := a.decode(r, &req, false); err != nil {
			return err
		}
		if req.Rooms == nil {
			return mxerr.BadJSONf("rooms must be an object")
		}
		rooms = req.Rooms
	}
	u, err := a.p.KeyBackups.PutKeys(r.Context(), dev.UserID, version, rooms)
	if err != nil {
		return err
	}
	return reply(w, u)
}

func (a *API) getBackupKeys(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	version, f, err := backupKeysRequest(r)
	if err != nil {
		return err
	}
	rooms, err := a.p.KeyBackups.Keys(r.Context(), dev.UserID, version, f)
	if err != nil {
		return err
	}
	switch {
	case f.SessionID != "":
		k, ok := rooms[f.RoomID].Sessions[f.SessionID]
		if !ok {
			return mxerr.NotFoundf("Key not found")
		}
		return reply(w, k)
	case f.RoomID != "":
		// A room without keys is {"sessions": {}}, as the spec says.
		rk, ok := rooms[f.RoomID]
		if !ok {
			rk.Sessions = map[string]keys.KeyData{}
		}
		return reply(w, rk)
	}
	return reply(w, map[string]any{"rooms": rooms})
}

func (a *API) deleteBackupKeys(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	version, f, err := backupKeysRequest(r)
	if err != nil {
		return err
	}
	u, err := a.p.KeyBackups.DeleteKeys(r.Context(), dev.UserID, version, f)
	if err != nil {
		return err
	}
	return reply(w, u)
}
