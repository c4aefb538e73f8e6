// Command benchserver is a media repository alone, for scripts/bench-media.sh:
// SQLite and blobs in -dir, any request with the access token "bench" is
// @bench:bench, uploads up to 2 GiB. It prints "listening on ADDR" and
// serves until its standard input closes, so it never outlives the
// benchmark that started it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/salonhq/salon/homeserver/media"
	"github.com/salonhq/salon/homeserver/store/sqlite"
	"github.com/salonhq/salon/internal/mxerr"
	"github.com/salonhq/salon/internal/redact"
)

type benchAuth struct{}

func (benchAuth) Authenticate(_ context.Context, token redact.Secret, _ string) (string, error) {
	if token == "bench" {
		return "@bench:bench", nil
	}
	return "", mxerr.New(mxerr.UnknownToken, "Unknown access token")
}

func main() {
	dir := flag.String("dir", "", "data directory")
	flag.Parse()
	if *dir == "" {
		log.Fatal("-dir is required")
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(*dir, "salon.db"), sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	cfg := media.Defaults()
	cfg.MaxUploadBytes = 2 << 30
	cfg.UserQuotaBytes = 0
	repo, err := media.New(media.Params{Config: cfg, ServerName: "bench", DataDir: *dir, Store: st, Auth: benchAuth{}})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: repo.Handler()}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	fmt.Printf("listening on %s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
