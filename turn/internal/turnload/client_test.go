package turnload

import "testing"

func TestFrameSize(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want int
	}{
		{"too short", []byte{0x00, 0x01, 0x00}, 0},
		{"STUN header, 8 bytes of attributes", []byte{0x01, 0x01, 0x00, 0x08}, 28},
		{"ChannelData, 5 bytes padded to 8", []byte{0x40, 0x00, 0x00, 0x05}, 12},
		{"ChannelData, 1200 bytes", []byte{0x40, 0x00, 0x04, 0xB0}, 1204},
		{"neither", []byte{0xC0, 0x00, 0x00, 0x00}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := frameSize(tt.b); got != tt.want {
				t.Errorf("frameSize(% x) = %d, want %d", tt.b, got, tt.want)
			}
		})
	}
}
