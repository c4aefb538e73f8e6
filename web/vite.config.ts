import { defineConfig, type Plugin } from "vite";

// matrix-js-sdk loads its Rust crypto (an 8 MB WebAssembly module) only
// from MatrixClient.initRustCrypto, which this client does not call yet:
// encrypted rooms are not supported. Resolving that one dynamic import to
// a stub keeps the module out of web/dist and out of the salon binary.
// Remove this plugin when end-to-end encryption lands (and add
// 'wasm-unsafe-eval' to script-src in web/embed.go).
function withoutRustCrypto(): Plugin {
  const id = "\0salon:no-rust-crypto";
  return {
    name: "salon-without-rust-crypto",
    enforce: "pre",
    resolveId(source, importer) {
      if (source === "./rust-crypto/index.js" && importer?.replace(/\\/g, "/").includes("/matrix-js-sdk/lib/")) return id;
      return null;
    },
    load(loaded) {
      if (loaded !== id) return null;
      return `export async function initRustCrypto() {
  throw new Error("End-to-end encryption is not available in this build of Salon's web client yet.");
}`;
    },
  };
}

// The bundle is served by the salon binary (web/embed.go) from its own
// origin: no CDN, no external fonts, and a CSP that allows only 'self'.
export default defineConfig({
  base: "/",
  plugins: [withoutRustCrypto()],
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
