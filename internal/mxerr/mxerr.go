// Package mxerr holds the one table of Matrix error codes and their HTTP
// statuses, and writes them as the Client-Server API's {"errcode","error"}
// bodies. Every handler reports failures through Write, so a code and its
// status never disagree. It imports no other package of the project.
package mxerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// Code is a Matrix errcode such as M_FORBIDDEN.
type Code string

// The codes Salon answers with. Statuses come from the Client-Server API
// ("Standard error response" and each endpoint's documented errors).
const (
	Forbidden           Code = "M_FORBIDDEN"
	UnknownToken        Code = "M_UNKNOWN_TOKEN"
	MissingToken        Code = "M_MISSING_TOKEN"
	UserLocked          Code = "M_USER_LOCKED"
	BadJSON             Code = "M_BAD_JSON"
	NotJSON             Code = "M_NOT_JSON"
	NotFound            Code = "M_NOT_FOUND"
	WrongRoomKeysVer    Code = "M_WRONG_ROOM_KEYS_VERSION"
	LimitExceeded       Code = "M_LIMIT_EXCEEDED"
	Unrecognized        Code = "M_UNRECOGNIZED"
	Unknown             Code = "M_UNKNOWN"
	Unauthorized        Code = "M_UNAUTHORIZED"
	UserDeactivated     Code = "M_USER_DEACTIVATED"
	UserInUse           Code = "M_USER_IN_USE"
	InvalidUsername     Code = "M_INVALID_USERNAME"
	RoomInUse           Code = "M_ROOM_IN_USE"
	InvalidRoomState    Code = "M_INVALID_ROOM_STATE"
	ThreepidInUse       Code = "M_THREEPID_IN_USE"
	UnsupportedRoomVer  Code = "M_UNSUPPORTED_ROOM_VERSION"
	IncompatibleRoomVer Code = "M_INCOMPATIBLE_ROOM_VERSION"
	BadState            Code = "M_BAD_STATE"
	GuestAccessForbid   Code = "M_GUEST_ACCESS_FORBIDDEN"
	MissingParam        Code = "M_MISSING_PARAM"
	InvalidParam        Code = "M_INVALID_PARAM"
	TooLarge            Code = "M_TOO_LARGE"
	Exclusive           Code = "M_EXCLUSIVE"
	ResourceLimit       Code = "M_RESOURCE_LIMIT_EXCEEDED"
	CannotLeaveServerNA Code = "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM"
	WeakPassword        Code = "M_WEAK_PASSWORD"
	UnknownPos          Code = "M_UNKNOWN_POS"
	NotYetUploaded      Code = "M_NOT_YET_UPLOADED"
	CannotOverwrite     Code = "M_CANNOT_OVERWRITE_MEDIA"
	DuplicateAnnotation Code = "M_DUPLICATE_ANNOTATION"
	MaxDelayExceeded    Code = "M_MAX_DELAY_EXCEEDED"
	Timeout             Code = "M_TIMEOUT"
	InvalidSignature    Code = "M_INVALID_SIGNATURE"
	BadAlias            Code = "M_BAD_ALIAS"
)

// status is the HTTP status each code is sent with unless an Error names
// its own (M_UNRECOGNIZED is 404 for an unknown path, 405 for a wrong
// method; M_NOT_FOUND is always 404).
var status = map[Code]int{
	Forbidden:           http.StatusForbidden,
	UnknownToken:        http.StatusUnauthorized,
	MissingToken:        http.StatusUnauthorized,
	UserLocked:          http.StatusUnauthorized,
	BadJSON:             http.StatusBadRequest,
	NotJSON:             http.StatusBadRequest,
	NotFound:            http.StatusNotFound,
	WrongRoomKeysVer:    http.StatusForbidden, // with current_version
	LimitExceeded:       http.StatusTooManyRequests,
	Unrecognized:        http.StatusNotFound,
	Unknown:             http.StatusInternalServerError,
	Unauthorized:        http.StatusUnauthorized,
	UserDeactivated:     http.StatusForbidden,
	UserInUse:           http.StatusBadRequest,
	InvalidUsername:     http.StatusBadRequest,
	RoomInUse:           http.StatusBadRequest,
	InvalidRoomState:    http.StatusBadRequest,
	ThreepidInUse:       http.StatusBadRequest,
	UnsupportedRoomVer:  http.StatusBadRequest,
	IncompatibleRoomVer: http.StatusBadRequest,
	BadState:            http.StatusBadRequest,
	BadAlias:            http.StatusBadRequest,
	GuestAccessForbid:   http.StatusForbidden,
	MissingParam:        http.StatusBadRequest,
	InvalidParam:        http.StatusBadRequest,
	TooLarge:            http.StatusRequestEntityTooLarge,
	Exclusive:           http.StatusBadRequest,
	ResourceLimit:       http.StatusForbidden,
	CannotLeaveServerNA: http.StatusForbidden,
	WeakPassword:        http.StatusBadRequest,
	UnknownPos:          http.StatusBadRequest,
	NotYetUploaded:      http.StatusGatewayTimeout,
	CannotOverwrite:     http.StatusConflict,
	DuplicateAnnotation: http.StatusBadRequest,
	MaxDelayExceeded:    http.StatusBadRequest,
	Timeout:             http.StatusGatewayTimeout,
	InvalidSignature:    http.StatusBadRequest,
}

// Error is a Matrix error. Extra fields (retry_after_ms, soft_logout,
// org.matrix.msc4140.max_delay, ...) go into Fields and are written beside
// errcode and error.
type Error struct {
	Code    Code
	Message string
	Status  int            // 0 means the code's usual status
	Fields  map[string]any // extra members of the JSON body
	Header  http.Header    // extra response headers (Retry-After)
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// HTTPStatus is the status this error is sent with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	if s, ok := status[e.Code]; ok {
		return s
	}
	return http.StatusBadRequest
}

// New returns an Error with the code's usual status.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithStatus returns a copy of e sent with another HTTP status.
func (e *Error) WithStatus(s int) *Error {
	c := *e
	c.Status = s
	return &c
}

// With returns a copy of e with an extra body field.
func (e *Error) With(key string, v any) *Error {
	c := *e
	c.Fields = make(map[string]any, len(e.Fields)+1)
	for k, x := range e.Fields {
		c.Fields[k] = x
	}
	c.Fields[key] = v
	return &c
}

// Shorthands for the codes handlers use most.
func Forbid(format string, args ...any) *Error { return New(Forbidden, format, args...) }
func BadJSONf(format string, args ...any) *Error {
	return New(BadJSON, format, args...)
}
func InvalidParamf(format string, args ...any) *Error {
	return New(InvalidParam, format, args...)
}
func NotFoundf(format string, args ...any) *Error { return New(NotFound, format, args...) }

// RateLimited is M_LIMIT_EXCEEDED with retry_after_ms and a Retry-After header.
func RateLimited(retryAfterMS int64) *Error {
	secs := (retryAfterMS + 999) / 1000
	if secs < 1 {
		secs = 1
	}
	return &Error{
		Code:    LimitExceeded,
		Message: "Too many requests",
		Fields:  map[string]any{"retry_after_ms": retryAfterMS},
		Header:  http.Header{"Retry-After": []string{fmt.Sprint(secs)}},
	}
}

// Write sends err as a Matrix error response. An err that is not (and does
// not wrap) an *Error becomes M_UNKNOWN and is logged once, without a
// stack; its text never reaches the client. When it wraps an error with
// an Unavailable() bool method that says true (the store's mark for a
// database unreachable or too slow, a full or read-only disk), the answer
// is 503 with Retry-After and the log line "storage unavailable": the
// request may succeed later. Any other is 500 and "internal error". The
// server keeps running either way (docs/FAULTS.md).
func Write(w http.ResponseWriter, log *slog.Logger, err error) {
	var me *Error
	if !errors.As(err, &me) {
		me = internal(log, err)
	}
	body := make(map[string]any, 2+len(me.Fields))
	for k, v := range me.Fields {
		body[k] = v
	}
	// A user-interactive auth challenge carries no errcode until a stage
	// has failed.
	if me.Code != "" {
		body["errcode"] = me.Code
		body["error"] = me.Message
	}
	for k, vs := range me.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	WriteJSON(w, me.HTTPStatus(), body)
}

// UnavailableRetryAfter is the Retry-After (seconds) sent with a 503 for
// storage out of service.
const UnavailableRetryAfter = 5

// unavailable is implemented by errors that mark a dependency out of
// service for now (store.UnavailableError); declared here so that this
// package imports none of the project.
type unavailable interface{ Unavailable() bool }

// internal logs err and returns the M_UNKNOWN it is answered with.
func internal(log *slog.Logger, err error) *Error {
	var u unavailable
	if errors.As(err, &u) && u.Unavailable() {
		if log != nil {
			log.Error("storage unavailable", "err", err)
		}
		return &Error{
			Code:    Unknown,
			Message: "Storage temporarily unavailable, try again later",
			Status:  http.StatusServiceUnavailable,
			Header:  http.Header{"Retry-After": []string{fmt.Sprint(UnavailableRetryAfter)}},
		}
	}
	if log != nil {
		log.Error("internal error", "err", err)
	}
	return &Error{Code: Unknown, Message: "Internal server error"}
}

// Appender is a value that writes its own JSON, faster than json.Marshal
// would (the /sync response); WriteJSON uses it.
type Appender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// WriteJSON writes v as a JSON response with the given status: its
// AppendJSON when it is an Appender, json.Marshal's encoding otherwise.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	var err error
	if a, ok := v.(Appender); ok {
		b, err = a.AppendJSON(nil)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errcode":"M_UNKNOWN","error":"Internal server error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
