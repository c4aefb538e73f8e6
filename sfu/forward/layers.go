package forward

// Layer describes one simulcast stream of a published video track.
type Layer struct {
	Width, Height uint32
	Bitrate       uint32 // bits per second the publisher aims for, 0 if unknown
	Active        bool   // packets arrived recently
}

// Request is what a subscriber asked for: the size of the element it
// shows the track in (0 × 0 for no preference) and the best quality it
// accepts (0 = low … 2 = high).
type Request struct {
	Width, Height uint32
	MaxLayer      int8
	Disabled      bool
}

// SelectLayer picks the simulcast layer for one subscriber: the smallest
// layer at least as large as the requested size, no better than MaxLayer,
// within budget bits per second (0 = no budget); when that layer is not
// active, the best active layer below it, else the lowest active above.
// It returns NoLayer when the subscriber wants nothing or nothing is active.
func SelectLayer(layers []Layer, req Request, budget uint32) int8 {
	if req.Disabled || len(layers) == 0 {
		return NoLayer
	}
	want := int8(len(layers) - 1)
	if req.MaxLayer < want {
		want = req.MaxLayer
	}
	if req.Width > 0 || req.Height > 0 {
		for i := int8(0); i < want; i++ {
			l := layers[i]
			if l.Width == 0 && l.Height == 0 {
				continue
			}
			if l.Width >= req.Width && l.Height >= req.Height {
				want = i
				break
			}
		}
	}
	if budget > 0 {
		for want > 0 && layers[want].Bitrate > budget {
			want--
		}
	}
	if want < 0 {
		want = 0
	}
	for i := want; i >= 0; i-- {
		if layers[i].Active {
			return i
		}
	}
	for i := want + 1; i < int8(len(layers)); i++ {
		if layers[i].Active {
			return i
		}
	}
	return NoLayer
}
