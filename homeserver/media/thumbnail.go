package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"strconv"
	"time"

	// Decoders for the formats Salon thumbnails. GIF gives its first frame.
	_ "image/gif"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// maxThumbnailRequest bounds the width and height a client may ask for.
const maxThumbnailRequest = 1 << 16

var errCannotThumbnail = mxerr.New(mxerr.Unknown, "Cannot generate thumbnails for the requested content").WithStatus(http.StatusBadRequest)

// GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId} and the
// legacy /_matrix/media/v3/thumbnail.
func (r *Repo) thumbnail(w http.ResponseWriter, req *http.Request, user string) error {
	q := req.URL.Query()
	dim := func(name string) (int, error) {
		s := q.Get(name)
		if s == "" {
			return 0, mxerr.New(mxerr.MissingParam, "Missing %s", name)
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxThumbnailRequest {
			return 0, mxerr.InvalidParamf("%s must be an integer between 1 and %d", name, maxThumbnailRequest)
		}
		return n, nil
	}
	dw, err := dim("width")
	if err != nil {
		return err
	}
	dh, err := dim("height")
	if err != nil {
		return err
	}
	method := q.Get("method")
	if method == "" {
		method = "scale"
	}
	if method != "crop" && method != "scale" {
		return mxerr.InvalidParamf("method must be crop or scale")
	}
	animated := false
	if s := q.Get("animated"); s != "" {
		if animated, err = strconv.ParseBool(s); err != nil {
			return mxerr.InvalidParamf("animated must be true or false")
		}
	}
	if req.PathValue("serverName") != r.p.ServerName && req.Context().Value(fedOrigin{}) == nil {
		return r.remoteThumbnail(w, req, user, dw, dh, method, animated)
	}
	m, err := r.find(req, user)
	if err != nil {
		return err
	}
	src, err := r.probe(req.Context(), m)
	if err != nil {
		return err
	}
	plan := planThumbnail(r.sizes, src, dw, dh, method, animated)
	if plan.original {
		f, key, err := r.openContent(req.Context(), m)
		if err != nil {
			return err
		}
		defer f.Close()
		thumbHeaders(w, src.contentType())
		serve(w, req, r.shared(user), key, time.UnixMilli(m.UploadedTS), f)
		return nil
	}
	if !r.noThumbCache.Load() {
		list, err := r.p.Store.MediaThumbnails(req.Context(), m.SHA256)
		if err != nil {
			return err
		}
		for _, t := range list {
			if t.Width == plan.size.Width && t.Height == plan.size.Height && t.Method == plan.size.Method && t.ContentType == plan.outType {
				if k, ok := keyOf(t.SHA256); ok {
					f, err := r.blobs.Open(req.Context(), k)
					if err == nil {
						defer f.Close()
						thumbHeaders(w, t.ContentType)
						serve(w, req, r.shared(user), k, time.UnixMilli(t.CreatedTS), f)
						return nil
					}
					r.log.Warn("thumbnail blob missing: making it again", "sha256", k.String(), "err", err)
				}
			}
		}
	}
	th, err := r.makeThumbnail(req.Context(), m, src, plan)
	if err != nil {
		return err
	}
	thumbHeaders(w, th.row.ContentType)
	k, _ := keyOf(th.row.SHA256)
	serve(w, req, r.shared(user), k, time.UnixMilli(th.row.CreatedTS), bytes.NewReader(th.data))
	return nil
}

func thumbHeaders(w http.ResponseWriter, contentType string) {
	ext := map[string]string{"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}[contentType]
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", `inline; filename="thumbnail.`+ext+`"`)
}

// sourceImage is what the header of an image says.
type sourceImage struct {
	format        string // jpeg, png, gif or webp
	width, height int    // as stored
	orientation   int    // EXIF orientation of a JPEG, 1 when none
	// decodeBytes is the memory decoding it takes (decodeCost.go).
	decodeBytes int64
}

func (s sourceImage) contentType() string { return "image/" + s.format }

// swapped reports whether the EXIF orientation turns the image a quarter.
func (s sourceImage) swapped() bool { return s.orientation >= 5 && s.orientation <= 8 }

// shown is the size the image is displayed at.
func (s sourceImage) shown() (int, int) {
	if s.swapped() {
		return s.height, s.width
	}
	return s.width, s.height
}

// probe reads the image header only: a decompression bomb (a small file
// declaring a huge image, or an image that would decode to too many
// bytes) is refused here, before any pixel is decoded.
func (r *Repo) probe(ctx context.Context, m store.MediaMeta) (sourceImage, error) {
	f, _, err := r.openContent(ctx, m)
	if err != nil {
		return sourceImage{}, err
	}
	defer f.Close()
	h, orientation, err := readHeader(f)
	if err != nil {
		return sourceImage{}, errCannotThumbnail
	}
	src := sourceImage{format: h.format, width: h.width, height: h.height, orientation: orientation}
	if h.width < 1 || h.height < 1 {
		return src, errCannotThumbnail
	}
	if int64(h.width)*int64(h.height) > r.cfg.Thumbnails.MaxPixels {
		return src, mxerr.New(mxerr.TooLarge, "Content is too large to thumbnail (%dx%d pixels)", h.width, h.height)
	}
	src.decodeBytes = h.decodeBytes()
	if src.decodeBytes > r.cfg.Thumbnails.MaxDecodeBytes {
		return src, mxerr.New(mxerr.TooLarge, "Content is too large to thumbnail (%dx%d pixels, %d bytes decoded)", h.width, h.height, src.decodeBytes)
	}
	if h.implausible(m.Size) {
		r.log.Debug("image too small for its declared size: not decoded", "media_id", m.MediaID, "width", h.width, "height", h.height, "size", m.Size)
		return src, errCannotThumbnail
	}
	return src, nil
}

// thumbPlan is what answers one thumbnail request.
type thumbPlan struct {
	original bool          // serve the content itself
	size     ThumbnailSize // else: the configured size to make
	outType  string
	// out is the thumbnail's pixel size as displayed.
	outW, outH int
}

// planThumbnail decides, without I/O, what answers a request for dw×dh by
// method. The content itself is served when it is no larger than what was
// asked for (the spec: "servers should return the original content rather
// than thumbnail it"), or when the chosen size would not shrink it —
// except a GIF, whose animation is only sent when animated=true. Servers
// "MUST NOT upscale".
func planThumbnail(sizes []ThumbnailSize, src sourceImage, dw, dh int, method string, animated bool) thumbPlan {
	w, h := src.shown()
	keepOriginal := src.format != "gif" || animated
	outType := "image/png"
	if src.format == "jpeg" {
		outType = "image/jpeg"
	}
	if dw >= w && dh >= h {
		if keepOriginal {
			return thumbPlan{original: true}
		}
		return thumbPlan{size: ThumbnailSize{w, h, "scale"}, outType: outType, outW: w, outH: h}
	}
	size := selectSize(sizes, dw, dh, method)
	ow, oh := outputSize(w, h, size)
	if ow == w && oh == h && keepOriginal {
		return thumbPlan{original: true}
	}
	return thumbPlan{size: size, outType: outType, outW: ow, outH: oh}
}

// selectSize picks the configured size that best answers dw×dh, as
// Synapse does: for crop, the closest aspect ratio first, then one at least
// as large, then the closest area; for scale, one reaching the requested
// width or height, then the closest area. Ties keep the configured order.
// When no size of the requested method is configured, all are considered.
func selectSize(sizes []ThumbnailSize, dw, dh int, method string) ThumbnailSize {
	abs := func(v int64) int64 {
		if v < 0 {
			return -v
		}
		return v
	}
	w, h := int64(dw), int64(dh)
	type cand struct {
		q [4]int64 // list (0: large enough, 1: not), then qualities
		s ThumbnailSize
	}
	var best *cand
	consider := func(c cand) {
		if best == nil || less(c.q, best.q) {
			best = &c
		}
	}
	for _, all := range []bool{false, true} {
		for _, s := range sizes {
			if !all && s.Method != method {
				continue
			}
			tw, th := int64(s.Width), int64(s.Height)
			list := int64(1)
			if tw >= w || th >= h {
				list = 0
			}
			sizeQ := abs((w - tw) * (h - th))
			if method == "crop" {
				minQ := int64(1)
				if w <= tw && h <= th {
					minQ = 0
				}
				consider(cand{[4]int64{list, abs(w*th - h*tw), minQ, sizeQ}, s})
			} else {
				consider(cand{[4]int64{list, sizeQ, 0, 0}, s})
			}
		}
		if best != nil {
			return best.s
		}
	}
	return ThumbnailSize{}
}

func less(a, b [4]int64) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// outputSize is the displayed size of the thumbnail of a w×h image made
// for size, never larger than the image.
func outputSize(w, h int, size ThumbnailSize) (int, int) {
	if size.Method == "crop" {
		cw, ch := cropRect(w, h, size.Width, size.Height)
		if cw <= size.Width && ch <= size.Height {
			return cw, ch
		}
		return size.Width, size.Height
	}
	s := min(float64(size.Width)/float64(w), float64(size.Height)/float64(h), 1)
	return max(1, int(float64(w)*s+0.5)), max(1, int(float64(h)*s+0.5))
}

// cropRect is the size of the centred region of a w×h image with the
// aspect ratio bw:bh.
func cropRect(w, h, bw, bh int) (int, int) {
	if int64(w)*int64(bh) > int64(h)*int64(bw) {
		return max(1, int(float64(h)*float64(bw)/float64(bh)+0.5)), h
	}
	return w, max(1, int(float64(w)*float64(bh)/float64(bw)+0.5))
}

// madeThumbnail is a thumbnail just generated and stored.
type madeThumbnail struct {
	row  store.MediaThumbnail
	data []byte
}

// key names a thumbnail of a content among the others.
func (p thumbPlan) key() string {
	return fmt.Sprintf("%d/%d/%s/%s", p.size.Width, p.size.Height, p.size.Method, p.outType)
}

// makeThumbnail returns the thumbnail plan asks for. The source is decoded
// once for it and for every configured size not stored yet, so the
// other sizes clients ask for next are already there; concurrent
// requests for any size of the same content share that one decode.
func (r *Repo) makeThumbnail(ctx context.Context, m store.MediaMeta, src sourceImage, plan thumbPlan) (*madeThumbnail, error) {
	for range 3 {
		ch := r.thumbs.DoChan(fmt.Sprintf("%x", m.SHA256), func() (any, error) {
			// Not the request's context: other requests may wait for this one.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			return r.generate(ctx, m, src, plan)
		})
		select {
		case res := <-ch:
			if res.Err != nil {
				return nil, res.Err
			}
			if th := res.Val.(map[string]*madeThumbnail)[plan.key()]; th != nil {
				return th, nil
			}
			// We joined a generation started for another request, which
			// made the configured sizes but not this one: go again.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, errors.New("media: thumbnail generation kept being taken over")
}

// plans lists the thumbnails to make of a source with want: want, and
// each configured size smaller than the image that is not stored yet.
func (r *Repo) plans(ctx context.Context, m store.MediaMeta, src sourceImage, want thumbPlan) ([]thumbPlan, error) {
	stored := map[string]bool{}
	if !r.noThumbCache.Load() {
		list, err := r.p.Store.MediaThumbnails(ctx, m.SHA256)
		if err != nil {
			return nil, err
		}
		for _, t := range list {
			stored[thumbPlan{size: ThumbnailSize{t.Width, t.Height, t.Method}, outType: t.ContentType}.key()] = true
		}
	}
	out := []thumbPlan{want}
	seen := map[string]bool{want.key(): true}
	w, h := src.shown()
	for _, size := range r.sizes {
		p := planThumbnail([]ThumbnailSize{size}, src, size.Width, size.Height, size.Method, false)
		if p.original {
			continue
		}
		if p.outW == w && p.outH == h && src.format != "gif" {
			continue // requests for it are answered with the content itself
		}
		if k := p.key(); !seen[k] && !stored[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// thumbCost is the memory making plans of src takes: the decoded image,
// the box-filtered copy (at most a quarter of it) and the outputs.
func thumbCost(src sourceImage, plans []thumbPlan) int64 {
	n := src.decodeBytes + src.decodeBytes/4
	for _, p := range plans {
		n += 8 * int64(p.outW) * int64(p.outH) // scaled, then turned upright
	}
	return n
}

// generate decodes the source once, makes the thumbnails of plans (want
// first), stores them and returns them by key. It waits for its share of
// the thumbnail memory budget before opening the source.
func (r *Repo) generate(ctx context.Context, m store.MediaMeta, src sourceImage, want thumbPlan) (map[string]*madeThumbnail, error) {
	plans, err := r.plans(ctx, m, src, want)
	if err != nil {
		return nil, err
	}
	weight := min(thumbCost(src, plans), r.cfg.Thumbnails.MemoryBudget)
	r.thumbWaiting.Add(1)
	err = r.thumbMem.Acquire(ctx, weight)
	r.thumbWaiting.Add(-1)
	if err != nil {
		return nil, err
	}
	datas, err := func() ([][]byte, error) {
		defer r.thumbMem.Release(weight)
		f, _, err := r.openContent(ctx, m)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		img, _, err := r.decode(f)
		if err != nil {
			r.log.Debug("cannot decode image for thumbnail", "media_id", m.MediaID, "err", err)
			return nil, errCannotThumbnail
		}
		var out [][]byte
		for _, p := range plans {
			var buf bytes.Buffer
			th := resize(img, src, p)
			if p.outType == "image/jpeg" {
				err = jpeg.Encode(&buf, th, &jpeg.Options{Quality: 80})
			} else {
				err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, th)
			}
			if err != nil {
				return nil, err
			}
			out = append(out, buf.Bytes())
		}
		return out, nil
	}()
	if err != nil {
		return nil, err
	}
	made := map[string]*madeThumbnail{}
	for i, p := range plans {
		th, err := r.storeThumbnail(ctx, m, p, datas[i])
		if err != nil {
			if i == 0 {
				return nil, err
			}
			r.log.Warn("cannot store thumbnail", "media_id", m.MediaID, "size", p.key(), "err", err)
			continue
		}
		made[p.key()] = th
	}
	return made, nil
}

// storeThumbnail stores one thumbnail of m made for p.
func (r *Repo) storeThumbnail(ctx context.Context, m store.MediaMeta, p thumbPlan, data []byte) (*madeThumbnail, error) {
	sum := sha256.Sum256(data)
	row := store.MediaThumbnail{
		SourceSHA256: m.SHA256, Width: p.size.Width, Height: p.size.Height, Method: p.size.Method,
		ContentType: p.outType, SHA256: sum[:], Size: int64(len(data)), CreatedTS: r.now().UnixMilli(),
	}
	bw, err := r.blobs.Create(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = bw.Abort() }()
	if _, err := bw.Write(data); err != nil {
		return nil, err
	}
	if err := bw.Close(); err != nil {
		return nil, err
	}
	err = r.p.Store.AddMediaThumbnail(ctx, row, func() error { return bw.Commit(Key(sum)) })
	if errors.Is(err, store.ErrNotFound) {
		return nil, mxerr.NotFoundf("Media not found") // purged meanwhile
	}
	if err != nil {
		return nil, err
	}
	r.made.Inc()
	return &madeThumbnail{row: row, data: data}, nil
}

// resize makes the thumbnail pixels: the work is done in the stored
// orientation and only the small result is turned upright.
func resize(img image.Image, src sourceImage, plan thumbPlan) image.Image {
	b := img.Bounds()
	ow, oh := plan.outW, plan.outH
	bw, bh := plan.size.Width, plan.size.Height
	if src.swapped() {
		ow, oh = oh, ow
		bw, bh = bh, bw
	}
	srcRect := b
	if plan.size.Method == "crop" {
		cw, ch := cropRect(b.Dx(), b.Dy(), bw, bh)
		x0 := b.Min.X + (b.Dx()-cw)/2
		y0 := b.Min.Y + (b.Dy()-ch)/2
		srcRect = image.Rect(x0, y0, x0+cw, y0+ch)
	}
	img, srcRect = preShrink(img, srcRect, ow, oh)
	dst := image.NewRGBA(image.Rect(0, 0, ow, oh))
	if srcRect.Dx() == ow && srcRect.Dy() == oh {
		draw.Draw(dst, dst.Bounds(), img, srcRect.Min, draw.Src)
	} else {
		draw.CatmullRom.Scale(dst, dst.Bounds(), img, srcRect, draw.Src, nil)
	}
	return orient(dst, src.orientation)
}

// orient turns an image as its EXIF orientation says (1–8).
func orient(m *image.RGBA, o int) image.Image {
	if o <= 1 || o > 8 {
		return m
	}
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < dh; y++ {
		for x := 0; x < dw; x++ {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-x, y
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sx, sy = x, h-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			}
			si := sy*m.Stride + sx*4
			di := y*out.Stride + x*4
			copy(out.Pix[di:di+4], m.Pix[si:si+4])
		}
	}
	return out
}

// jpegOrientation reads the EXIF orientation tag of a JPEG, or 1.
func jpegOrientation(rd io.Reader) int { return scanJPEG(rd).orientation }

// exifOrientation finds tag 0x0112 in IFD0 of a TIFF structure.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var u16 func([]byte) int
	var u32 func([]byte) int
	switch string(t[:2]) {
	case "II":
		u16 = func(b []byte) int { return int(b[0]) | int(b[1])<<8 }
		u32 = func(b []byte) int { return u16(b) | u16(b[2:])<<16 }
	case "MM":
		u16 = func(b []byte) int { return int(b[0])<<8 | int(b[1]) }
		u32 = func(b []byte) int { return u16(b)<<16 | u16(b[2:]) }
	default:
		return 1
	}
	off := u32(t[4:])
	if off < 8 || off+2 > len(t) {
		return 1
	}
	count := u16(t[off:])
	for i := 0; i < count; i++ {
		e := off + 2 + 12*i
		if e+12 > len(t) {
			return 1
		}
		if u16(t[e:]) == 0x0112 {
			if v := u16(t[e+8:]); v >= 1 && v <= 8 {
				return v
			}
			return 1
		}
	}
	return 1
}
