// Bundle Cornerstone3D into static/vendor/ (git-ignored). Run by `make` after `npm ci`.
import { build } from "esbuild";
import { mkdirSync } from "node:fs";

mkdirSync("static/vendor", { recursive: true });

// The codecs' Emscripten glue mentions Node built-ins on a code path browsers never take.
const nodeBuiltinsEmpty = {
  name: "node-builtins-empty",
  setup(b) {
    b.onResolve({ filter: /^(fs|path|crypto|module|url|worker_threads|events|stream|util|os|buffer)$/ }, (args) => ({
      path: args.path,
      namespace: "empty",
    }));
    b.onLoad({ filter: /.*/, namespace: "empty" }, (args) => ({
      // xmlbuilder2 subclasses EventEmitter at load time, so "events" needs a class.
      contents:
        args.path === "events"
          ? "export class EventEmitter { on() { return this; } once() { return this; } off() { return this; } emit() { return false; } removeListener() { return this; } }\nexport default { EventEmitter };"
          : "export default {};",
    }));
  },
};
await build({
  entryPoints: { cornerstone: "static_src/cornerstone-entry.js" },
  bundle: true,
  format: "esm",
  splitting: true,
  outdir: "static/vendor",
  minify: true,
  sourcemap: false,
  target: ["es2022"],
  logLevel: "warning",
  plugins: [nodeBuiltinsEmpty],
  platform: "browser",
  loader: { ".wasm": "file" },
  define: { "process.env.NODE_ENV": '"production"' },
});
// dicom-image-loader 5.x decodes in a module worker it starts with
// `new URL("./decodeImageFrameWorker.js", import.meta.url)`; esbuild leaves that URL alone, so the
// worker must exist next to the bundle's chunks as its own self-contained module.
await build({
  entryPoints: {
    decodeImageFrameWorker: "node_modules/@cornerstonejs/dicom-image-loader/dist/esm/decodeImageFrameWorker.js",
  },
  bundle: true,
  format: "esm",
  splitting: false,
  outdir: "static/vendor",
  minify: true,
  sourcemap: false,
  target: ["es2022"],
  logLevel: "warning",
  plugins: [nodeBuiltinsEmpty],
  platform: "browser",
  loader: { ".wasm": "file" },
  define: { "process.env.NODE_ENV": '"production"' },
});
console.log("built static/vendor/cornerstone.js and decodeImageFrameWorker.js");
