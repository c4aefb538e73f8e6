// Package web holds the TypeScript web client; embed.go exposes the built
// bundle to the Go binary.
package web
