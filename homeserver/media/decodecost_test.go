package media

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"testing"
	"time"
)

// pngChunk is one PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

func pngIHDR(w, h int, depth, colorType byte) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	return pngChunk("IHDR", append(ihdr, depth, colorType, 0, 0, 0))
}

// hostilePNG16 is the image of issue #13: a complete, valid 5600×5600
// 16-bit RGBA PNG of about 244 KB, under the 32 Mpx cap, that decodes at
// 8 bytes a pixel: 251 MB. Its pixels are all zero, which DEFLATE codes at
// its best ratio; the stream is written here directly (a literal zero,
// then "258 bytes again" in two bits, as zlib's best level would),
// because compressing 251 MB under the race detector takes a minute.
func hostilePNG16(tb testing.TB) []byte {
	const w, h = 5600, 5600
	const raw = h * (1 + w*8) // a filter byte (0) and the row, all zeros
	var bw bitWriter
	bw.bits(1, 1) // final block
	bw.bits(2, 2) // dynamic Huffman codes
	bw.bits(286-257, 5)
	bw.bits(1-1, 5)
	bw.bits(18-4, 4)
	// Code lengths of the code-length alphabet, in the order of RFC 1951
	// 3.2.7: 18 (a run of zeros) gets 1 bit, 1 and 2 get 2 bits.
	for _, sym := range []int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1} {
		bw.bits(map[int]uint64{18: 1, 2: 2, 1: 2}[sym], 3)
	}
	// Canonical codes: 18 → 0, 1 → 10, 2 → 11.
	zeros := func(n int) { bw.code(0, 1); bw.bits(uint64(n-11), 7) }
	bw.code(0b11, 2) // literal 0: length 2
	zeros(138)       // literals 1-138
	zeros(117)       // 139-255
	bw.code(0b11, 2) // 256, end of block: length 2
	zeros(28)        // lengths 257-284
	bw.code(0b10, 2) // 285, length 258: length 1
	bw.code(0b10, 2) // distance code 0 (distance 1): length 1
	// Literal/length codes: 285 → 0, literal 0 → 10, end of block → 11;
	// the one distance code → 0.
	bw.code(0b10, 2)
	n := raw - 1
	for ; n >= 258; n -= 258 {
		bw.code(0, 1)
		bw.code(0, 1)
	}
	for ; n > 0; n-- {
		bw.code(0b10, 2)
	}
	bw.code(0b11, 2)
	z := append([]byte{0x78, 0xDA}, bw.flush()...)
	z = binary.BigEndian.AppendUint32(z, uint32(raw%65521)<<16|1) // Adler-32 of zeros
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngIHDR(w, h, 16, 6)...)
	out = append(out, pngChunk("IDAT", z)...)
	return append(out, pngChunk("IEND", nil)...)
}

// bitWriter writes a DEFLATE bit stream: values least significant bit
// first, Huffman codes most significant bit first.
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

func (b *bitWriter) bits(v uint64, n uint) {
	b.acc |= v << b.nacc
	b.nacc += n
	for b.nacc >= 8 {
		b.out = append(b.out, byte(b.acc))
		b.acc >>= 8
		b.nacc -= 8
	}
}

func (b *bitWriter) code(c uint64, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		b.bits(c>>uint(i)&1, 1)
	}
}

func (b *bitWriter) flush() []byte {
	if b.nacc > 0 {
		b.out = append(b.out, byte(b.acc))
		b.acc, b.nacc = 0, 0
	}
	return b.out
}

// truncatedPNG is the other image of issue #13 (74 bytes there, 66 here), declaring a
// 5000×5000 8-bit RGBA image, its data cut short and no IEND. The
// decoder allocates the whole 100 MB image before failing.
func truncatedPNG() []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(make([]byte, 1+5000*4))
	_ = zw.Flush()
	data := z.Bytes()[:min(z.Len(), 21)]
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngIHDR(5000, 5000, 8, 6)...)
	return append(out, pngChunk("IDAT", data)...)
}

// TestThumbnailHostileImages: the two images of issue #13 are refused
// from their headers, never decoded; an honest 16-bit PNG still gets its
// thumbnail.
func TestThumbnailHostileImages(t *testing.T) {
	e := newEnv(t)
	decodes := e.countDecodes()
	big := hostilePNG16(t)
	if len(big) > 260_000 {
		t.Fatalf("the hostile PNG is %d bytes", len(big))
	}
	trunc := truncatedPNG()
	if len(trunc) > 80 {
		t.Fatalf("the truncated PNG is %d bytes", len(trunc))
	}
	id := e.upload(alice, "image/png", "", big)
	for _, s := range DefaultThumbnailSizes() {
		mustErr(t, e.req("GET", thumbPath(id, s.Width, s.Height, s.Method), alice, nil), 413, "M_TOO_LARGE")
	}
	id = e.upload(alice, "image/png", "", trunc)
	mustErr(t, e.req("GET", thumbPath(id, 32, 32, "crop"), alice, nil), 400, "M_UNKNOWN")
	mustErr(t, e.req("GET", thumbPath(id, 800, 600, "scale"), alice, nil), 400, "M_UNKNOWN")
	// A baseline JPEG cut short after its header, likewise.
	id = e.upload(alice, "image/jpeg", "", jpegBytes(t, 1200, 900, 1)[:1000])
	mustErr(t, e.req("GET", thumbPath(id, 32, 32, "crop"), alice, nil), 400, "M_UNKNOWN")
	if n := decodes.Load(); n != 0 {
		t.Fatalf("%d hostile images decoded", n)
	}
	if n := counterValue(e.repo.made); n != 0 {
		t.Fatalf("%v thumbnails made", n)
	}

	// A 16-bit PNG that fits the budget is thumbnailed.
	m := image.NewNRGBA64(image.Rect(0, 0, 300, 200))
	for i := range m.Pix {
		m.Pix[i] = byte(i)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	id = e.upload(alice, "image/png", "", b.Bytes())
	if th, _, _ := e.getThumb(thumbPath(id, 96, 96, "crop")); th.Bounds().Dx() != 96 || decodes.Load() != 1 {
		t.Fatalf("16-bit thumbnail %v after %d decodes", th.Bounds(), decodes.Load())
	}
}

func TestDecodeBytes(t *testing.T) {
	yuv420 := [][2]int{{2, 2}, {1, 1}, {1, 1}}
	for _, tc := range []struct {
		name string
		h    header
		want int64
	}{
		{"16-bit RGBA PNG", header{format: "png", width: 5600, height: 5600, model: color.NRGBA64Model}, 5600 * 5600 * 8},
		{"8-bit RGBA PNG", header{format: "png", width: 5000, height: 5000, model: color.NRGBAModel}, 5000 * 5000 * 4},
		{"interlaced", header{format: "png", width: 100, height: 100, model: color.NRGBAModel, pngInterlaced: true}, 100 * 100 * 4 * 2},
		{"paletted PNG", header{format: "png", width: 100, height: 100, model: color.Palette{color.Black}}, 100 * 100},
		{"gray 16", header{format: "png", width: 100, height: 100, model: color.Gray16Model}, 100 * 100 * 2},
		{"GIF", header{format: "gif", width: 100, height: 100, model: color.Palette{color.Black}}, 100 * 100},
		// 4000×3000 in 16×16 MCUs: 250×188 of them.
		{"JPEG 4:2:0", header{format: "jpeg", width: 4000, height: 3000, model: color.YCbCrModel, jpegSampling: yuv420}, 250 * 188 * 6 * 64},
		{"progressive JPEG", header{format: "jpeg", width: 4000, height: 3000, model: color.YCbCrModel, jpegSampling: yuv420, jpegProgressive: true}, 250 * 188 * 6 * 64 * 5},
		{"gray JPEG", header{format: "jpeg", width: 16, height: 16, model: color.GrayModel, jpegSampling: [][2]int{{1, 1}}}, 256},
		{"CMYK JPEG", header{format: "jpeg", width: 16, height: 16, model: color.CMYKModel, jpegSampling: [][2]int{{1, 1}, {1, 1}, {1, 1}, {1, 1}}}, 4*256 + 4*256},
		{"JPEG frame unread", header{format: "jpeg", width: 100, height: 100, model: color.YCbCrModel}, 15 * 100 * 100},
		{"lossy WebP", header{format: "webp", width: 100, height: 100, model: color.YCbCrModel}, 2 * 100 * 100},
		{"lossless WebP", header{format: "webp", width: 100, height: 100, model: color.NRGBAModel}, 8 * 100 * 100},
	} {
		if got := tc.h.decodeBytes(); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestReadHeader(t *testing.T) {
	h, o, err := readHeader(bytes.NewReader(jpegBytes(t, 400, 200, 6)))
	if err != nil || o != 6 || h.format != "jpeg" || h.jpegProgressive || len(h.jpegSampling) != 3 || h.jpegSampling[0] != [2]int{2, 2} {
		t.Fatalf("jpeg header %+v, orientation %d, %v", h, o, err)
	}
	h, _, err = readHeader(bytes.NewReader(hostilePNG16(t)))
	if err != nil || h.pngBits != 64 || h.pngInterlaced || h.decodeBytes() != 5600*5600*8 {
		t.Fatalf("png header %+v, %v", h, err)
	}
	if h.implausible(int64(len(hostilePNG16(t)))) {
		t.Fatal("a complete PNG called implausible")
	}
	h, _, err = readHeader(bytes.NewReader(truncatedPNG()))
	if err != nil || !h.implausible(int64(len(truncatedPNG()))) {
		t.Fatalf("66 bytes for 100 MB of pixels not refused: %+v, %v", h, err)
	}
	// A baseline JPEG: honest files pass, the same header cut short not.
	j := jpegBytes(t, 1200, 900, 1)
	h, _, err = readHeader(bytes.NewReader(j))
	if err != nil || h.implausible(int64(len(j))) {
		t.Fatalf("a whole JPEG called implausible: %+v, %v", h, err)
	}
	h.width, h.height = 8000, 4000
	if !h.implausible(int64(len(j))) {
		t.Fatal("a JPEG declaring 8000×4000 in a few kilobytes not refused")
	}
	h.jpegProgressive = true
	if h.implausible(int64(len(j))) {
		t.Fatal("progressive JPEGs have no such bound")
	}
}

// TestThumbnailMemoryBudget: thumbnails are made concurrently as long as
// their memory fits the budget, whatever their number, and wait for it
// otherwise.
func TestThumbnailMemoryBudget(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Thumbnails.MemoryBudget, c.Thumbnails.MaxDecodeBytes = 2<<20, 2<<20 })
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	e.repo.decode = func(r io.Reader) (image.Image, string, error) {
		entered <- struct{}{}
		<-release
		return image.Decode(r)
	}
	get := func(id string, w, h int, method string) <-chan int {
		ch := make(chan int, 1)
		go func() {
			req, _ := newRequest(e, thumbPath(id, w, h, method))
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				ch <- 0
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ch <- resp.StatusCode
		}()
		return ch
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	enter := func(what string) {
		t.Helper()
		select {
		case <-entered:
		case <-time.After(30 * time.Second):
			t.Fatalf("timed out waiting for %s to be decoded", what)
		}
	}
	done := func(chs ...<-chan int) {
		t.Helper()
		for _, ch := range chs {
			if st := <-ch; st != http.StatusOK {
				t.Fatalf("thumbnail = %d", st)
			}
		}
	}

	// Four small images (about 0.13 MB each): all decoded at once, more
	// than a count of one per core would allow.
	var small []<-chan int
	for i := range 4 {
		id := e.upload(alice, "image/png", "", pngBytes(t, 100+i, 100))
		small = append(small, get(id, 32, 32, "crop"))
	}
	for i := range 4 {
		enter("small image " + string(rune('1'+i)))
	}
	for range 4 {
		release <- struct{}{}
	}
	done(small...)

	// Two large images (each costs more than the budget: 1.4 MB decoded,
	// 2.4 MB of outputs): one after the other.
	a := e.upload(alice, "image/png", "", pngBytes(t, 600, 600))
	b := e.upload(alice, "image/png", "", pngBytes(t, 601, 600))
	first := get(a, 32, 32, "crop")
	enter("the first large image")
	second := get(b, 32, 32, "crop")
	wait("the second large image to wait for memory", func() bool { return e.repo.thumbWaiting.Load() == 1 })
	select {
	case <-entered:
		t.Fatal("the second large image was decoded while the first held the budget")
	default:
	}
	release <- struct{}{}
	enter("the second large image")
	release <- struct{}{}
	done(first, second)
}
