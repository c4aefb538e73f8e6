// Command devproxy serves the embedded web client in front of a running
// Salon whose binary does not serve it yet, or while working on the client:
// it mounts web.Handler() at "/" the way cmd/salon does and passes the
// Matrix API paths to the upstream homeserver. The browser tests use it
// only when the salon under test answers "/" without the client.
//
//	go run ./web/internal/devproxy --listen 127.0.0.1:8080 --upstream http://127.0.0.1:8008
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/salonhq/salon/web"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:8008", "the homeserver's base URL")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*listen, *upstream, log); err != nil {
		log.Error("devproxy", "err", err)
		os.Exit(1)
	}
}

func run(listen, upstream string, log *slog.Logger) error {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("--upstream %q: want a base URL such as http://127.0.0.1:8008", upstream)
	}
	api := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.SetXForwarded()
		},
		FlushInterval: -1, // long-polled /sync answers go out as they come
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	mux := http.NewServeMux()
	mux.Handle("/_matrix/", api)
	mux.Handle("/.well-known/matrix/", api)
	mux.Handle("/health", api)
	mux.Handle("/", web.Handler())

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// The same line as salon serve prints, so scripts read either.
	fmt.Printf("listening on http://%s (API from %s)\n", ln.Addr(), u)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
