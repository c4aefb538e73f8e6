package media

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"io"
)

// What decoding an image costs in memory, read from its header before any
// pixel is decoded. The pixel cap alone is not enough: a 16-bit RGBA PNG
// decodes at 8 bytes a pixel, a progressive JPEG keeps every DCT
// coefficient (4 bytes each) besides its planes, and a file that is far
// too small for the image it declares makes the decoder allocate the whole
// image before failing on the missing data.

// maxDeflateRatio is the largest expansion of DEFLATE (RFC 1951): a
// 258-byte match coded in under 2 bits, about 1032:1. A PNG's image data
// can be no smaller than its raw size divided by this.
const maxDeflateRatio = 1032

// header is what decodeCost needs of an image's header.
type header struct {
	format string
	width  int
	height int
	model  color.Model
	// PNG: bits per pixel of the raw data, and Adam7 interlacing (the
	// decoder then holds each pass as well as the image).
	pngBits       int
	pngInterlaced bool
	// JPEG: progressive (SOF2) scans, and each component's sampling
	// factors from the frame header.
	jpegProgressive bool
	jpegSampling    [][2]int
}

// decodeBytes is the memory the standard decoders allocate to decode the
// image: the pixels at the layout the decoder uses, and its large
// intermediate buffers.
func (h header) decodeBytes() int64 {
	w, ht := int64(h.width), int64(h.height)
	px := w * ht
	switch h.format {
	case "jpeg":
		if n := h.jpegPlaneBytes(); n > 0 {
			total := n
			if h.jpegProgressive {
				total += 4 * n // one int32 per coefficient, kept for all scans
			}
			switch len(h.jpegSampling) {
			case 4: // CMYK or YCCK: converted into a 4-byte image
				total += 4 * px
			case 3: // RGB JPEGs (no subsampling) are converted to RGBA
				if h.jpegUnsampled() {
					total += 4 * px
				}
			}
			return total
		}
		return 15 * px // frame header unread: the worst case
	case "png":
		n := px * bytesPerPixel(h.model)
		if h.pngInterlaced {
			n *= 2 // the seven passes are decoded apart, then merged
		}
		return n
	case "webp":
		switch h.model {
		case color.YCbCrModel:
			return 2 * px // 4:2:0 planes padded to macroblocks
		case color.NYCbCrAModel:
			return 3 * px
		}
		return 8 * px // lossless: ARGB words, then NRGBA
	}
	return px * bytesPerPixel(h.model)
}

// bytesPerPixel is the size of a pixel of an image in the colour model.
// Models not listed are counted at 8 bytes, the largest standard one.
func bytesPerPixel(m color.Model) int64 {
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 4
	}
	return 8
}

// jpegPlaneBytes is the size of the decoder's component planes: each
// covers whole 8×8 blocks of whole MCUs.
func (h header) jpegPlaneBytes() int64 {
	hmax, vmax := 0, 0
	for _, s := range h.jpegSampling {
		if s[0] < 1 || s[0] > 4 || s[1] < 1 || s[1] > 4 {
			return 0
		}
		hmax, vmax = max(hmax, s[0]), max(vmax, s[1])
	}
	if hmax == 0 {
		return 0
	}
	mcuX := (int64(h.width) + int64(8*hmax) - 1) / int64(8*hmax)
	mcuY := (int64(h.height) + int64(8*vmax) - 1) / int64(8*vmax)
	var n int64
	for _, s := range h.jpegSampling {
		n += mcuX * int64(s[0]) * mcuY * int64(s[1]) * 64
	}
	return n
}

func (h header) jpegUnsampled() bool {
	for _, s := range h.jpegSampling {
		if s != h.jpegSampling[0] {
			return false
		}
	}
	return true
}

// implausible reports an image whose file is too small to hold the image
// it declares, even at its coding's best: it is truncated or forged, and
// decoding it would allocate the whole image for nothing. For a PNG the
// bound is DEFLATE's expansion; for a baseline JPEG, two bits a block
// (the shortest Huffman codes for "no change of DC" and "end of block").
// A progressive JPEG can code runs of empty blocks in a few bits: it is
// left to the memory budget.
func (h header) implausible(fileSize int64) bool {
	switch {
	case h.format == "png" && h.pngBits > 0:
		raw := int64(h.height) * (1 + (int64(h.width)*int64(h.pngBits)+7)/8)
		return fileSize*maxDeflateRatio < raw
	case h.format == "jpeg" && !h.jpegProgressive:
		blocks := h.jpegPlaneBytes() / 64
		return fileSize*8 < 2*blocks
	}
	return false
}

// readHeader reads an image's header: image.DecodeConfig, then what the
// format's own header adds (PNG bit depth and interlacing, JPEG frame and
// EXIF orientation). rd must be at the start of the file.
func readHeader(rd io.ReadSeeker) (header, int, error) {
	cfg, format, err := image.DecodeConfig(io.LimitReader(rd, 1<<20))
	if err != nil {
		return header{}, 1, err
	}
	h := header{format: format, width: cfg.Width, height: cfg.Height, model: cfg.ColorModel}
	orientation := 1
	if format != "png" && format != "jpeg" {
		return h, orientation, nil
	}
	if _, err := rd.Seek(0, io.SeekStart); err != nil {
		return h, orientation, err
	}
	switch format {
	case "png":
		var b [29]byte // signature, IHDR length and type, 13 bytes of IHDR
		if _, err := io.ReadFull(rd, b[:]); err == nil {
			depth, ctype := int(b[24]), b[25]
			channels := map[byte]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
			h.pngBits = depth * channels
			h.pngInterlaced = b[28] == 1
		}
	case "jpeg":
		j := scanJPEG(io.LimitReader(rd, 1<<20))
		orientation = j.orientation
		h.jpegProgressive, h.jpegSampling = j.progressive, j.sampling
	}
	return h, orientation, nil
}

// jpegInfo is what Salon reads of a JPEG's markers before the image data.
type jpegInfo struct {
	orientation int // EXIF, 1 when none
	progressive bool
	sampling    [][2]int
}

// scanJPEG reads the markers of a JPEG up to its first scan.
func scanJPEG(rd io.Reader) jpegInfo {
	info := jpegInfo{orientation: 1}
	var hdr [4]byte
	if _, err := io.ReadFull(rd, hdr[:2]); err != nil || hdr[0] != 0xFF || hdr[1] != 0xD8 {
		return info
	}
	for {
		if _, err := io.ReadFull(rd, hdr[:4]); err != nil || hdr[0] != 0xFF {
			return info
		}
		marker := hdr[1]
		n := int(binary.BigEndian.Uint16(hdr[2:]))
		if marker == 0xDA || marker == 0xD9 || n < 2 {
			return info // start of scan: the header is over
		}
		seg := make([]byte, n-2)
		if _, err := io.ReadFull(rd, seg); err != nil {
			return info
		}
		switch {
		case marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")):
			info.orientation = exifOrientation(seg[6:])
		case marker >= 0xC0 && marker <= 0xC2 && len(seg) >= 6:
			info.progressive = marker == 0xC2
			nc := int(seg[5])
			info.sampling = nil
			for i := 0; i < nc && 6+3*i+2 < len(seg); i++ {
				s := seg[6+3*i+1]
				info.sampling = append(info.sampling, [2]int{int(s >> 4), int(s & 0x0F)})
			}
		}
	}
}
