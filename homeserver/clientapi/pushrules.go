package clientapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/salonhq/salon/homeserver/push"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

func (a *API) pushRoutes() {
	if a.p.PushRules == nil {
		return
	}
	a.handle(v3+"/pushrules/", methods{http.MethodGet: a.authed(a.getPushRules)})
	a.handle(v3+"/pushrules/global/", methods{http.MethodGet: a.authed(a.getPushRules)})
	a.handle(v3+"/pushrules/global/{kind}/{ruleId}", methods{
		http.MethodGet: a.authed(a.getPushRule), http.MethodPut: a.authed(a.putPushRule), http.MethodDelete: a.authed(a.deletePushRule),
	})
	a.handle(v3+"/pushrules/global/{kind}/{ruleId}/{attr}", methods{
		http.MethodGet: a.authed(a.getPushRuleAttr), http.MethodPut: a.authed(a.putPushRuleAttr),
	})
}

// pushErr maps the push package's errors to Matrix errors.
func pushErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, push.ErrNotFound):
		return mxerr.NotFoundf("Unknown push rule")
	case errors.Is(err, push.ErrDefaultRule):
		return mxerr.InvalidParamf("%v", err)
	case errors.Is(err, push.ErrInvalid):
		return mxerr.InvalidParamf("%v", err)
	}
	return err
}

func (a *API) getPushRules(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	rs, err := a.p.PushRules.Rules(r.Context(), dev.UserID)
	if err != nil {
		return err
	}
	if strings.HasSuffix(r.URL.Path, "/pushrules/global/") {
		return reply(w, rs)
	}
	return reply(w, map[string]any{"global": rs})
}

func (a *API) pushRule(r *http.Request, dev store.Device) (push.Rule, error) {
	rs, err := a.p.PushRules.Rules(r.Context(), dev.UserID)
	if err != nil {
		return push.Rule{}, err
	}
	rule, err := push.Get(rs, r.PathValue("kind"), r.PathValue("ruleId"))
	return rule, pushErr(err)
}

func (a *API) getPushRule(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	rule, err := a.pushRule(r, dev)
	if err != nil {
		return err
	}
	return reply(w, rule)
}

func (a *API) putPushRule(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var rule push.Rule
	if err := a.decode(r, &rule, false); err != nil {
		return err
	}
	kind, id := r.PathValue("kind"), r.PathValue("ruleId")
	q := r.URL.Query()
	return a.pushUpdate(w, r, dev, func(o *push.Overrides) error {
		return o.Put(kind, id, rule, q.Get("before"), q.Get("after"))
	})
}

func (a *API) deletePushRule(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	kind, id := r.PathValue("kind"), r.PathValue("ruleId")
	return a.pushUpdate(w, r, dev, func(o *push.Overrides) error { return o.Delete(kind, id) })
}

func (a *API) pushUpdate(w http.ResponseWriter, r *http.Request, dev store.Device, change func(*push.Overrides) error) error {
	if err := a.p.PushRules.Update(r.Context(), dev.UserID, change); err != nil {
		return pushErr(err)
	}
	return reply(w, empty)
}

func (a *API) getPushRuleAttr(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	rule, err := a.pushRule(r, dev)
	if err != nil {
		return err
	}
	switch r.PathValue("attr") {
	case "enabled":
		return reply(w, map[string]bool{"enabled": rule.Enabled})
	case "actions":
		return reply(w, map[string]any{"actions": rule.Actions})
	}
	return mxerr.New(mxerr.Unrecognized, "Unknown push rule attribute")
}

func (a *API) putPushRuleAttr(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	kind, id := r.PathValue("kind"), r.PathValue("ruleId")
	switch r.PathValue("attr") {
	case "enabled":
		var body struct {
			Enabled *bool `json:"enabled"`
		}
		if err := a.decode(r, &body, false); err != nil {
			return err
		}
		if body.Enabled == nil {
			return missing("enabled")
		}
		return a.pushUpdate(w, r, dev, func(o *push.Overrides) error { return o.SetEnabled(kind, id, *body.Enabled) })
	case "actions":
		var body struct {
			Actions []json.RawMessage `json:"actions"`
		}
		if err := a.decode(r, &body, false); err != nil {
			return err
		}
		if body.Actions == nil {
			return missing("actions")
		}
		acts := make([]push.Action, len(body.Actions))
		for i, x := range body.Actions {
			acts[i] = push.Action(x)
		}
		return a.pushUpdate(w, r, dev, func(o *push.Overrides) error { return o.SetActions(kind, id, acts) })
	}
	return mxerr.New(mxerr.Unrecognized, "Unknown push rule attribute")
}
