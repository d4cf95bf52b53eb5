// The page is compiled into the modelcopy binary and served under /dashboard/, so every asset URL is relative
// (base './'), and nothing goes into dist/ that the browser does not need (no source maps).
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    // Everything is served from the binary anyway; separate files keep the MIME types few and the cache simple.
    assetsInlineLimit: 0,
  },
  server: {
    // `npm run dev` against a running service: MODELCOPY_URL=https://127.0.0.1:50051 npm run dev
    proxy: process.env.MODELCOPY_URL
      ? { "/modelcopy.v1.ModelCopy": { target: process.env.MODELCOPY_URL, changeOrigin: true, secure: false } }
      : undefined,
  },
});
