package identity

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
)

// page is one of the few HTML pages of the flow: an error, a choice of
// providers, the confirmation before sending a login elsewhere.
type page struct {
	Title string
	Text  string
	Links []pageLink
	// AuthDone tells the client that opened the UIA fallback that the
	// stage is complete (Client-Server API, "Fallback").
	AuthDone bool
}

type pageLink struct {
	Text string
	URL  string
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}
a.button{display:block;margin:.75rem 0;padding:.75rem 1rem;border:1px solid #888;border-radius:.5rem;text-decoration:none;text-align:center}</style>
</head><body>
<h1>{{.Title}}</h1>
{{if .Text}}<p>{{.Text}}</p>{{end}}
{{range .Links}}<a class="button" href="{{.URL}}">{{.Text}}</a>
{{end}}{{if .AuthDone}}<script>{{.Script}}</script>{{end}}
</body></html>
`))

// authDoneScript tells the opener of the UIA fallback that the stage is
// done; the Content-Security-Policy allows exactly this script.
const authDoneScript = `if (window.onAuthDone) { window.onAuthDone(); } else if (window.opener && window.opener.postMessage) { window.opener.postMessage("authDone", "*"); }`

var scriptCSP = func() string {
	h := sha256.Sum256([]byte(authDoneScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
}()

func writePage(w http.ResponseWriter, status int, p page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Out of frames (a confirmation page in a hidden frame must not be
	// clickable), no script but the one above, no login token in Referer.
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src "+scriptCSP+"; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, struct {
		page
		Script template.JS
	}{p, template.JS(authDoneScript)})
}
