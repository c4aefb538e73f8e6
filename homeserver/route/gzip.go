package route

import (
	"compress/gzip"
	"io"
	"mime"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// gzipMinSize is the smallest JSON body worth compressing. Deflate's cost
// has a large fixed part (building each block's Huffman tables): the
// 1.3 KB answer of a long-poll woken by a message took 14 µs to compress
// for 870 bytes saved (BenchmarkGzipSmallAnswer), and compressing the
// answers of a room's 2,000 woken long-polls was 14 % of the server's CPU
// (issue 24). Below 4 KiB an answer goes out as it is.
const gzipMinSize = 4096

var gzipWriters = sync.Pool{New: func() any {
	// BestSpeed: a /sync body shrinks by most of what the best level gets,
	// for a fraction of the CPU.
	w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return w
}}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (RFC 9110, section 12.5.3): "gzip" or "x-gzip" or "*" with a q-value
// that is not zero.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "gzip" && name != "x-gzip" && name != "*" {
				continue
			}
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					}
				}
			}
			if q > 0 {
				return true
			}
		}
	}
	return false
}

// gzipWriter compresses a JSON response once its body passes gzipMinSize;
// anything else (media, HTML, small JSON, a response already encoded)
// goes through untouched. Close must be called when the handler is done.
type gzipWriter struct {
	http.ResponseWriter
	status  int  // the status the handler asked for, until it is sent
	decided bool // whether the response's fate is known
	json    bool // the response is JSON that may be compressed
	buf     []byte
	gz      *gzip.Writer // non-nil once compressing
}

func newGzipWriter(w http.ResponseWriter) *gzipWriter { return &gzipWriter{ResponseWriter: w} }

func (w *gzipWriter) WriteHeader(code int) {
	if code < 200 {
		// 1xx: informational, not the response.
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.status != 0 {
		return // superfluous, as net/http would ignore it
	}
	w.status = code
	h := w.Header()
	ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	w.json = ct == "application/json" && h.Get("Content-Encoding") == "" &&
		code != http.StatusNoContent && code != http.StatusNotModified
	if w.json {
		h.Add("Vary", "Accept-Encoding")
	} else {
		w.pass()
	}
}

// pass sends the header as the handler set it; the body goes through.
func (w *gzipWriter) pass() {
	w.decided = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.ResponseWriter.WriteHeader(w.status)
}

// gzipSlots bounds the responses being compressed at once. Each
// compressor holds about 1 MB; a message into a room of thousands wakes as
// many long-polls at once, and on a busy machine hundreds of them held a
// compressor together (380 MB of a 2,000-member fan-out's heap, issue 24).
// An answer that finds no slot free goes out uncompressed, which also
// spends less CPU on a server that is already behind.
var gzipSlots = make(chan struct{}, max(8, 4*runtime.GOMAXPROCS(0)))

func (w *gzipWriter) start() error {
	w.decided = true
	select {
	case gzipSlots <- struct{}{}:
	default:
		w.ResponseWriter.WriteHeader(w.status)
		_, err := w.ResponseWriter.Write(w.buf)
		w.buf = nil
		return err
	}
	h := w.Header()
	h.Set("Content-Encoding", "gzip")
	h.Del("Content-Length")
	w.ResponseWriter.WriteHeader(w.status)
	w.gz = gzipWriters.Get().(*gzip.Writer)
	w.gz.Reset(w.ResponseWriter)
	_, err := w.gz.Write(w.buf)
	w.buf = nil
	return err
}

func (w *gzipWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", http.DetectContentType(b))
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.gz != nil {
		return w.gz.Write(b)
	}
	if w.decided {
		return w.ResponseWriter.Write(b)
	}
	w.buf = append(w.buf, b...)
	if len(w.buf) >= gzipMinSize {
		if err := w.start(); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// Close finishes the response: the gzip trailer, or a small body as is.
func (w *gzipWriter) Close() error {
	if w.gz != nil {
		err := w.gz.Close()
		w.gz.Reset(io.Discard)
		gzipWriters.Put(w.gz)
		w.gz = nil
		<-gzipSlots
		return err
	}
	if w.decided || w.status == 0 {
		return nil
	}
	w.decided = true
	w.Header().Set("Content-Length", strconv.Itoa(len(w.buf)))
	w.ResponseWriter.WriteHeader(w.status)
	_, err := w.ResponseWriter.Write(w.buf)
	w.buf = nil
	return err
}

// abandon gives up a response cut short (its compressor's slot is freed;
// the compressor itself is dropped).
func (w *gzipWriter) abandon() {
	if w.gz != nil {
		w.gz = nil
		<-gzipSlots
	}
}

// Flush sends what is buffered (compressing it if it is JSON), then
// flushes the connection.
func (w *gzipWriter) Flush() {
	if !w.decided && w.status != 0 {
		if len(w.buf) > 0 {
			_ = w.start()
		} else {
			w.pass()
		}
	}
	if w.gz != nil {
		_ = w.gz.Flush()
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// ReadFrom keeps net/http's sendfile path for what is not compressed.
func (w *gzipWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.decided && w.gz == nil {
		if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
			return rf.ReadFrom(src)
		}
	}
	return io.Copy(struct{ io.Writer }{w}, src)
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *gzipWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
