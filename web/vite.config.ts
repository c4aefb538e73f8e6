import { defineConfig } from "vite";

// matrix-js-sdk loads its Rust crypto (@matrix-org/matrix-sdk-crypto-wasm,
// a WebAssembly module) with a dynamic import from
// MatrixClient.initRustCrypto, which web/src/crypto calls after sign-in:
// Vite puts it in chunks of its own (JavaScript and the .wasm file), so
// the sign-in page never waits for them. web/embed.go serves .wasm as
// application/wasm and allows 'wasm-unsafe-eval' in script-src.

// The bundle is served by the salon binary (web/embed.go) from its own
// origin: no CDN, no external fonts, and a CSP that allows only 'self'.
export default defineConfig({
  base: "/",
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  build: {
    outDir: "dist",
    // build.sh empties dist itself and keeps dist/.gitkeep, which Git
    // tracks so that a checkout without a build still compiles.
    emptyOutDir: false,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 2048,
  },
  server: {
    // `npm run dev` against a salon on its default address.
    proxy: {
      "/_matrix": { target: "http://127.0.0.1:8008", ws: true },
      "/.well-known/matrix": "http://127.0.0.1:8008",
    },
  },
});
