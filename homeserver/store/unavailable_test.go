package store

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

func TestFileUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, true},
		{&fs.PathError{Op: "open", Path: "x", Err: syscall.EROFS}, true},
		{&fs.PathError{Op: "open", Path: "x", Err: syscall.EPERM}, true},
		{fmt.Errorf("commit blob: %w", &fs.PathError{Op: "rename", Path: "x", Err: syscall.EIO}), true},
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.EDQUOT}, true},
		{&fs.PathError{Op: "open", Path: "x", Err: syscall.ENOENT}, false},
		{errors.New("something else"), false},
		{nil, false},
	} {
		got := FileUnavailable(tc.err)
		if IsUnavailable(got) != tc.want {
			t.Errorf("%v: unavailable %v, want %v", tc.err, IsUnavailable(got), tc.want)
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("%v: cause lost", tc.err)
		}
	}
	// Wrapping twice keeps one mark.
	once := Unavailable(syscall.EIO)
	if twice := Unavailable(fmt.Errorf("x: %w", once)); errors.Unwrap(twice) != once {
		t.Errorf("wrapped twice: %v", twice)
	}
}
