package media

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"mime"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedImages are small valid images of each decoded format, for the
// corpora of the image targets.
func seedImages(f *testing.F) [][]byte {
	f.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 7, 5))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 37)
	}
	var out [][]byte
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	out = append(out, append([]byte(nil), b.Bytes()...))
	b.Reset()
	_ = jpeg.Encode(&b, img, &jpeg.Options{Quality: 50})
	j := append([]byte(nil), b.Bytes()...)
	out = append(out, j)
	// The same JPEG with an EXIF APP1 segment saying orientation 6.
	exif := []byte("Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00")
	seg := append([]byte{0xFF, 0xE1, byte((len(exif) + 2) >> 8), byte(len(exif) + 2)}, exif...)
	out = append(out, append(append(append([]byte(nil), j[:2]...), seg...), j[2:]...))
	b.Reset()
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White})
	_ = gif.Encode(&b, pal, nil)
	out = append(out, append([]byte(nil), b.Bytes()...))
	// A PNG declaring 65535×65535 with nothing after its header.
	out = append(out, []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\xff\xff\x00\x00\xff\xff\x10\x06\x00\x00\x01\x00\x00\x00\x00"))
	return out
}

// FuzzThumbnail runs what a thumbnail request does with an uploaded file
// (any bytes): the header read and cost check, then, for an image within
// small limits, the decode, the plan and the resize. The thumbnail is the
// size planned, upright.
func FuzzThumbnail(f *testing.F) {
	for _, s := range seedImages(f) {
		f.Add(s, 3, 2, true)
	}
	if webp, err := os.ReadFile("testdata/blue-purple-pink.lossy.webp"); err == nil {
		f.Add(webp, 32, 32, false)
	}
	f.Add([]byte("GIF89a"), 1, 1, false)
	sizes := DefaultThumbnailSizes()
	f.Fuzz(func(t *testing.T, data []byte, dw, dh int, crop bool) {
		h, orientation, err := readHeader(bytes.NewReader(data))
		if err != nil {
			return
		}
		if orientation < 1 || orientation > 8 {
			t.Fatalf("orientation %d", orientation)
		}
		if h.width < 1 || h.height < 1 || int64(h.width)*int64(h.height) > 1<<16 {
			return
		}
		if n := h.decodeBytes(); n < 0 || n > 64<<20 {
			if n < 0 {
				t.Fatalf("decode cost %d", n)
			}
			return
		}
		if h.implausible(int64(len(data))) {
			return
		}
		img, _, err := image.Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		src := sourceImage{format: h.format, width: h.width, height: h.height, orientation: orientation}
		dw, dh = 1+abs(dw)%800, 1+abs(dh)%800
		method := "scale"
		if crop {
			method = "crop"
		}
		plan := planThumbnail(sizes, src, dw, dh, method, false)
		if plan.original {
			return
		}
		if plan.outW < 1 || plan.outH < 1 {
			t.Fatalf("plan %+v", plan)
		}
		th := resize(img, src, plan)
		if b := th.Bounds(); b.Dx() != plan.outW || b.Dy() != plan.outH {
			t.Fatalf("thumbnail %v, planned %dx%d", b, plan.outW, plan.outH)
		}
	})
}

func abs(v int) int {
	if v < 0 {
		if v = -v; v < 0 {
			return 0
		}
	}
	return v
}

// FuzzNames: whatever a client sends as a file name, content type or mxc
// URI, what is stored and echoed in headers is safe: a parsable content
// type, a file name without controls, separators or leading dots, and a
// Content-Disposition that parses back to the same name.
func FuzzNames(f *testing.F) {
	for _, s := range [][2]string{{"image/png", "cat.png"}, {"text/plain; charset=utf-8; x=y", "notes.txt"},
		{"", ""}, {"text/html", "../../etc/passwd"}, {"a/b; c", "évé\u202e.exe"}, {"x", "\"quoted\\\".txt"},
		{"image/svg+xml", ".hidden"}, {"TEXT/PLAIN;charset=\"l\\\"x\"", "a\r\nb"}} {
		f.Add(s[0], s[1], "mxc://example.org/abc_DEF-1")
	}
	f.Fuzz(func(t *testing.T, ct, name, uri string) {
		nct := normalContentType(ct)
		if mt, _, err := mime.ParseMediaType(nct); err != nil || !strings.Contains(mt, "/") {
			t.Fatalf("%q normalised to %q: %v", ct, nct, err)
		}
		s := sanitiseFilename(name)
		if !utf8.ValidString(s) || len(s) > maxNameBytes || strings.ContainsAny(s, "/\\\r\n\x00") || strings.HasPrefix(s, ".") {
			t.Fatalf("%q sanitised to %q", name, s)
		}
		d := disposition(nct, s)
		if strings.ContainsAny(d, "\r\n") {
			t.Fatalf("header injection: %q", d)
		}
		if s != "" {
			_, params, err := mime.ParseMediaType(d)
			if err != nil || params["filename"] != s {
				t.Fatalf("disposition %q for %q reads back %q, %v", d, s, params["filename"], err)
			}
		}
		if server, id, ok := parseMXC(uri); ok && (server == "" || !validMediaID(id) || "mxc://"+server+"/"+id != uri) {
			t.Fatalf("%q parsed as %q %q", uri, server, id)
		}
	})
}

// FuzzOpenGraph: any page (in any declared charset) yields at most
// maxOGKeys values, each valid UTF-8 and clipped.
func FuzzOpenGraph(f *testing.F) {
	for _, s := range []string{`<html><head><title>Salle</title><meta property="og:title" content="T"><meta name="description" content="d"></head><body>x`,
		`<meta name="og:image" content="/i.png"><meta property="og:image:width" content="9">`, `<title>` + strings.Repeat("é", 3000),
		"<meta charset=\"iso-8859-1\"><title>caf\xe9</title>", `<<<>>><meta property=og:x content=`, ""} {
		f.Add([]byte(s), "text/html")
	}
	f.Add([]byte("\xff\xfe<\x00t\x00"), "text/html; charset=utf-16")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		og := parseOpenGraph(bytes.NewReader(body), ct)
		if len(og) > maxOGKeys+2 { // the og: keys, the title and the description
			t.Fatalf("%d keys", len(og))
		}
		for k, v := range og {
			s, ok := v.(string)
			if !ok {
				continue
			}
			if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxOGValue+1 {
				t.Fatalf("%s = %q", k, s)
			}
		}
	})
}
