package media

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/salonhq/salon/homeserver/store"
)

// testImage is a gradient, so that scaling and cropping show.
func testImage(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	return m
}

func pngBytes(t testing.TB, w, h int) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, testImage(w, h)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// jpegBytes encodes a w×h JPEG; orientation > 1 adds an EXIF APP1 segment
// carrying it (little-endian TIFF).
func jpegBytes(t testing.TB, w, h, orientation int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testImage(w, h), &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	if orientation <= 1 {
		return b.Bytes()
	}
	tiff := []byte("II*\x00\x08\x00\x00\x00")         // header, IFD0 at 8
	tiff = append(tiff, 1, 0)                         // one entry
	tiff = append(tiff, 0x12, 0x01, 3, 0, 1, 0, 0, 0) // tag 0x0112 SHORT ×1
	tiff = append(tiff, byte(orientation), 0, 0, 0)
	tiff = append(tiff, 0, 0, 0, 0) // no next IFD
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := []byte{0xFF, 0xE1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}
	out := append([]byte{0xFF, 0xD8}, app1...)
	out = append(out, seg...)
	return append(out, b.Bytes()[2:]...)
}

// gifBytes is a two-frame animation: red, then blue.
func gifBytes(t testing.TB, w, h int) []byte {
	pal := color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}}
	red := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	blue := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	for i := range blue.Pix {
		blue.Pix[i] = 1
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: []*image.Paletted{red, blue}, Delay: []int{10, 10}}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func webpBytes(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/blue-purple-pink.lossy.webp") // 150×100
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bombPNG is a valid 100-byte PNG that declares a 50,000×50,000 image.
func bombPNG() []byte {
	chunk := func(typ string, data []byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		out = append(out, typ...)
		out = append(out, data...)
		return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, 50000)
	ihdr = binary.BigEndian.AppendUint32(ihdr, 50000)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(make([]byte, 64))
	_ = zw.Close()
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, chunk("IHDR", ihdr)...)
	out = append(out, chunk("IDAT", z.Bytes())...)
	return append(out, chunk("IEND", nil)...)
}

func thumbPath(id string, w, h int, method string) string {
	return fmt.Sprintf("/_matrix/client/v1/media/thumbnail/test/%s?width=%d&height=%d&method=%s", id, w, h, method)
}

// getThumb fetches and decodes a thumbnail.
func (e *env) getThumb(path string) (image.Image, string, []byte) {
	e.t.Helper()
	resp := e.req("GET", path, alice, nil)
	body := readAll(e.t, resp)
	if resp.StatusCode != 200 {
		e.t.Fatalf("%s = %d %s", path, resp.StatusCode, body)
	}
	if cd := resp.Header.Get("Content-Disposition"); len(cd) < 6 || cd[:6] != "inline" {
		e.t.Fatalf("thumbnail Content-Disposition = %q", cd)
	}
	m, format, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("%s: not an image: %v", path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "image/"+format {
		e.t.Fatalf("Content-Type %q for a %s", ct, format)
	}
	return m, format, body
}

func TestThumbnailFormats(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, ct  string
		data      []byte
		outFormat string
		w, h      int    // request
		method    string // request
		wantW     int
		wantH     int
	}{
		{"jpeg crop", "image/jpeg", jpegBytes(t, 400, 300, 1), "jpeg", 64, 64, "crop", 96, 96},
		{"jpeg scale", "image/jpeg", jpegBytes(t, 400, 300, 1), "jpeg", 300, 200, "scale", 320, 240},
		{"jpeg small crop", "image/jpeg", jpegBytes(t, 400, 300, 1), "jpeg", 20, 20, "crop", 32, 32},
		{"png crop", "image/png", pngBytes(t, 400, 300), "png", 96, 96, "crop", 96, 96},
		{"png scale", "image/png", pngBytes(t, 1000, 500), "png", 640, 480, "scale", 640, 320},
		{"png scale to 800x600", "image/png", pngBytes(t, 1200, 900), "png", 700, 500, "scale", 800, 600},
		{"gif crop", "image/gif", gifBytes(t, 200, 100), "png", 32, 32, "crop", 32, 32},
		{"webp crop", "image/webp", webpBytes(t), "png", 32, 32, "crop", 32, 32},
		{"webp scale", "image/webp", webpBytes(t), "webp", 50, 50, "scale", 150, 100},
		{"exif rotated jpeg", "image/jpeg", jpegBytes(t, 400, 200, 6), "jpeg", 320, 240, "scale", 120, 240},
		{"default method is scale", "image/png", pngBytes(t, 400, 300), "png", 320, 240, "", 320, 240},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.upload(alice, tc.ct, "", tc.data)
			m, format, body := e.getThumb(thumbPath(id, tc.w, tc.h, tc.method))
			if format != tc.outFormat {
				t.Errorf("format %s, want %s", format, tc.outFormat)
			}
			if b := m.Bounds(); b.Dx() != tc.wantW || b.Dy() != tc.wantH {
				t.Errorf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), tc.wantW, tc.wantH)
			}
			if tc.name == "webp scale" && !bytes.Equal(body, tc.data) {
				t.Error("a thumbnail no smaller than the image must be the original content")
			}
		})
	}
}

func TestThumbnailGIFFirstFrame(t *testing.T) {
	e := newEnv(t)
	id := e.upload(alice, "image/gif", "", gifBytes(t, 200, 100))
	for _, path := range []string{thumbPath(id, 32, 32, "crop"), thumbPath(id, 500, 500, "scale")} {
		m, format, _ := e.getThumb(path)
		if format != "png" {
			t.Fatalf("%s: %s, want a static png", path, format)
		}
		r, g, b, _ := m.At(m.Bounds().Dx()/2, m.Bounds().Dy()/2).RGBA()
		if r>>8 != 255 || g != 0 || b != 0 {
			t.Fatalf("%s: pixel %d,%d,%d: not the first (red) frame", path, r>>8, g>>8, b>>8)
		}
	}
	// animated=true: the original animation, which is no larger.
	resp := e.req("GET", thumbPath(id, 500, 500, "scale")+"&animated=true", alice, nil)
	if body := readAll(t, resp); resp.Header.Get("Content-Type") != "image/gif" || !bytes.Equal(body, gifBytes(t, 200, 100)) {
		t.Fatalf("animated thumbnail = %q", resp.Header.Get("Content-Type"))
	}
}

func TestThumbnailCached(t *testing.T) {
	e := newEnv(t)
	decodes := e.countDecodes()
	id := e.upload(alice, "image/jpeg", "", jpegBytes(t, 1200, 900, 1))
	path := thumbPath(id, 320, 240, "scale")
	// Many at once: made once.
	var wg sync.WaitGroup
	etags := make([]string, 8)
	for i := range etags {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := newRequest(e, path)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			_, _ = readAllErr(resp)
			etags[i] = resp.Header.Get("ETag")
		}(i)
	}
	wg.Wait()
	// One decode made every configured size (all smaller than 1200×900).
	if n := counterValue(e.repo.made); n != 5 || decodes.Load() != 1 {
		t.Fatalf("generated %v thumbnails from %d decodes, want the 5 sizes from one", n, decodes.Load())
	}
	resp := e.req("GET", path, alice, nil)
	readAll(t, resp)
	if resp.Header.Get("ETag") != etags[0] || counterValue(e.repo.made) != 5 {
		t.Fatal("second request did not use the cached thumbnail")
	}
	for _, et := range etags {
		if et != etags[0] || et == "" {
			t.Fatalf("ETags differ: %v", etags)
		}
	}
	if resp := e.req("GET", path, alice, nil, "If-None-Match", etags[0]); resp.StatusCode != 304 {
		t.Fatalf("If-None-Match on a thumbnail = %d", resp.StatusCode)
	}
	// The same content uploaded again shares the thumbnails.
	id2 := e.upload(bob, "image/jpeg", "", jpegBytes(t, 1200, 900, 1))
	e.getThumb(thumbPath(id2, 320, 240, "scale"))
	if counterValue(e.repo.made) != 5 {
		t.Fatal("identical content was thumbnailed again")
	}
	// Every other size is served from what the first decode made.
	for _, s := range DefaultThumbnailSizes() {
		e.getThumb(thumbPath(id, s.Width, s.Height, s.Method))
	}
	if counterValue(e.repo.made) != 5 || decodes.Load() != 1 {
		t.Fatalf("other sizes: %v thumbnails, %d decodes", counterValue(e.repo.made), decodes.Load())
	}
	list, err := e.st.MediaThumbnails(bg, mustMeta(t, e, id).SHA256)
	if err != nil || len(list) != 5 {
		t.Fatalf("thumbnail rows = %+v, %v", list, err)
	}
}

// countDecodes counts the source images the repository decodes.
func (e *env) countDecodes() *atomic.Int64 {
	var n atomic.Int64
	e.repo.decode = func(r io.Reader) (image.Image, string, error) {
		n.Add(1)
		return image.Decode(r)
	}
	return &n
}

func TestThumbnailRefusals(t *testing.T) {
	e := newEnv(t)
	img := e.upload(alice, "image/png", "", pngBytes(t, 100, 100))
	for _, tc := range []struct {
		name, query string
		status      int
		code        string
	}{
		{"negative width", "width=-32&height=32", 400, "M_INVALID_PARAM"},
		{"zero height", "width=32&height=0", 400, "M_INVALID_PARAM"},
		{"huge", "width=99999999999999999999&height=32", 400, "M_INVALID_PARAM"},
		{"too large", "width=100000&height=32", 400, "M_INVALID_PARAM"},
		{"not a number", "width=abc&height=32", 400, "M_INVALID_PARAM"},
		{"fraction", "width=32.5&height=32", 400, "M_INVALID_PARAM"},
		{"missing height", "width=32", 400, "M_MISSING_PARAM"},
		{"bad method", "width=32&height=32&method=stretch", 400, "M_INVALID_PARAM"},
		{"bad animated", "width=32&height=32&animated=maybe", 400, "M_INVALID_PARAM"},
		{"bad timeout", "width=32&height=32&timeout_ms=soon", 400, "M_INVALID_PARAM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustErr(t, e.req("GET", "/_matrix/client/v1/media/thumbnail/test/"+img+"?"+tc.query, alice, nil), tc.status, tc.code)
		})
	}
	t.Run("not an image", func(t *testing.T) {
		id := e.upload(alice, "image/png", "", []byte("<html>not a png</html>"))
		mustErr(t, e.req("GET", thumbPath(id, 32, 32, "crop"), alice, nil), 400, "M_UNKNOWN")
	})
	t.Run("svg is not thumbnailed", func(t *testing.T) {
		id := e.upload(alice, "image/svg+xml", "", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))
		mustErr(t, e.req("GET", thumbPath(id, 32, 32, "crop"), alice, nil), 400, "M_UNKNOWN")
	})
	t.Run("decompression bomb", func(t *testing.T) {
		bomb := bombPNG()
		if len(bomb) > 200 {
			t.Fatalf("bomb is %d bytes", len(bomb))
		}
		id := e.upload(alice, "image/png", "", bomb)
		mustErr(t, e.req("GET", thumbPath(id, 32, 32, "crop"), alice, nil), 413, "M_TOO_LARGE")
		mustErr(t, e.req("GET", thumbPath(id, 800, 600, "scale"), alice, nil), 413, "M_TOO_LARGE")
		// The download itself is fine: it is only bytes.
		if resp := e.req("GET", download(id), alice, nil); resp.StatusCode != 200 {
			t.Fatalf("download of the bomb = %d", resp.StatusCode)
		}
	})
	if n := counterValue(e.repo.made); n != 0 {
		t.Fatalf("%v thumbnails made from refused requests", n)
	}
}

func TestSelectSize(t *testing.T) {
	sizes := DefaultThumbnailSizes()
	for _, tc := range []struct {
		w, h   int
		method string
		want   ThumbnailSize
	}{
		{32, 32, "crop", ThumbnailSize{32, 32, "crop"}},
		{33, 33, "crop", ThumbnailSize{96, 96, "crop"}},
		{96, 96, "crop", ThumbnailSize{96, 96, "crop"}},
		{1, 1, "crop", ThumbnailSize{32, 32, "crop"}},
		{500, 500, "crop", ThumbnailSize{96, 96, "crop"}}, // largest crop: no size is large enough
		{320, 240, "scale", ThumbnailSize{320, 240, "scale"}},
		{321, 100, "scale", ThumbnailSize{320, 240, "scale"}}, // Synapse: reaching the height is enough
		{321, 241, "scale", ThumbnailSize{640, 480, "scale"}},
		{100, 100, "scale", ThumbnailSize{320, 240, "scale"}},
		{640, 480, "scale", ThumbnailSize{640, 480, "scale"}},
		{700, 500, "scale", ThumbnailSize{800, 600, "scale"}},
		{4000, 3000, "scale", ThumbnailSize{800, 600, "scale"}},
	} {
		if got := selectSize(sizes, tc.w, tc.h, tc.method); got != tc.want {
			t.Errorf("%dx%d %s: %v, want %v", tc.w, tc.h, tc.method, got, tc.want)
		}
	}
	// Only scale sizes configured: a crop request still gets one.
	if got := selectSize([]ThumbnailSize{{320, 240, "scale"}}, 32, 32, "crop"); got != (ThumbnailSize{320, 240, "scale"}) {
		t.Errorf("fallback: %v", got)
	}
}

func TestPlanThumbnail(t *testing.T) {
	sizes := DefaultThumbnailSizes()
	jpg := sourceImage{format: "jpeg", width: 4000, height: 3000, orientation: 1}
	small := sourceImage{format: "png", width: 20, height: 10, orientation: 1}
	gifSmall := sourceImage{format: "gif", width: 20, height: 10, orientation: 1}
	for _, tc := range []struct {
		name     string
		src      sourceImage
		w, h     int
		method   string
		animated bool
		want     thumbPlan
	}{
		{"large jpeg", jpg, 320, 240, "scale", false, thumbPlan{size: ThumbnailSize{320, 240, "scale"}, outType: "image/jpeg", outW: 320, outH: 240}},
		{"bigger than the image", jpg, 5000, 5000, "scale", false, thumbPlan{original: true}},
		{"small image, small request", small, 32, 32, "crop", false, thumbPlan{original: true}},
		{"small image cropped", small, 5, 5, "crop", false, thumbPlan{size: ThumbnailSize{32, 32, "crop"}, outType: "image/png", outW: 10, outH: 10}},
		{"small gif not animated", gifSmall, 32, 32, "scale", false, thumbPlan{size: ThumbnailSize{20, 10, "scale"}, outType: "image/png", outW: 20, outH: 10}},
		{"small gif animated", gifSmall, 32, 32, "scale", true, thumbPlan{original: true}},
		{"portrait by exif", sourceImage{format: "jpeg", width: 4000, height: 3000, orientation: 6}, 320, 240, "scale", false,
			thumbPlan{size: ThumbnailSize{320, 240, "scale"}, outType: "image/jpeg", outW: 180, outH: 240}},
	} {
		if got := planThumbnail(sizes, tc.src, tc.w, tc.h, tc.method, tc.animated); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestJPEGOrientation(t *testing.T) {
	for o := 1; o <= 8; o++ {
		if got := jpegOrientation(bytes.NewReader(jpegBytes(t, 16, 8, o))); got != o {
			t.Errorf("orientation %d read as %d", o, got)
		}
	}
	for _, junk := range [][]byte{nil, []byte("\xff\xd8"), []byte("\xff\xd8\xff\xe1\x00\x02"), pngBytes(t, 2, 2)} {
		if got := jpegOrientation(bytes.NewReader(junk)); got != 1 {
			t.Errorf("junk %q: %d", junk, got)
		}
	}
	// Turning is exact: a 2×1 image rotated a quarter clockwise.
	m := image.NewRGBA(image.Rect(0, 0, 2, 1))
	m.Set(0, 0, color.RGBA{255, 0, 0, 255})
	m.Set(1, 0, color.RGBA{0, 0, 255, 255})
	out := orient(m, 6)
	if b := out.Bounds(); b.Dx() != 1 || b.Dy() != 2 {
		t.Fatalf("rotated size %v", b)
	}
	if r, _, _, _ := out.At(0, 0).RGBA(); r>>8 != 255 {
		t.Fatal("orientation 6 should put the left pixel on top")
	}
}

func newRequest(e *env, path string) (*http.Request, error) {
	req, err := http.NewRequest("GET", e.srv.URL+path, nil)
	if err == nil {
		req.Header.Set("Authorization", "Bearer "+alice)
	}
	return req, err
}

func readAllErr(resp *http.Response) ([]byte, error) { return io.ReadAll(resp.Body) }

func mustMeta(t testing.TB, e *env, id string) store.MediaMeta {
	t.Helper()
	m, err := e.st.MediaMeta(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// TestPreShrink checks the box pre-step keeps colours to the edges for
// each pixel layout it handles.
func TestPreShrink(t *testing.T) {
	const w, h = 1001, 803 // odd sizes: partial blocks at the edges
	ycc := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for i := range ycc.Y {
		ycc.Y[i] = 200
	}
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = 90, 160
	}
	gray := image.NewGray(image.Rect(0, 0, w, h))
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	nrgba := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range gray.Pix {
		gray.Pix[i] = 77
	}
	for i := 0; i < len(rgba.Pix); i += 4 {
		copy(rgba.Pix[i:], []byte{10, 20, 30, 255})
		copy(nrgba.Pix[i:], []byte{40, 50, 60, 128})
	}
	for _, img := range []image.Image{ycc, gray, rgba, nrgba} {
		out, rect := preShrink(img, image.Rect(100, 50, 900, 650), 96, 96)
		if out == img {
			t.Fatalf("%T not shrunk", img)
		}
		// f = min(800/192, 600/192) = 3
		if b := out.Bounds(); b.Dx() != w/3 || b.Dy() != h/3 || rect != image.Rect(33, 16, 300, 216) {
			t.Fatalf("%T: bounds %v, rect %v", img, b, rect)
		}
		for _, p := range []image.Point{{0, 0}, {out.Bounds().Dx() - 1, out.Bounds().Dy() - 1}, {100, 100}} {
			if got, want := out.At(p.X, p.Y), img.At(p.X*3, p.Y*3); got != want {
				t.Fatalf("%T at %v: %v, want %v", img, p, got, want)
			}
		}
	}
	// Small reductions are left to the kernel.
	if out, _ := preShrink(rgba, rgba.Bounds(), 600, 500); out != image.Image(rgba) {
		t.Fatal("shrunk although the output is more than half the source")
	}
}
