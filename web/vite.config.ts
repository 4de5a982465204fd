import { defineConfig } from "vite";

// `make web` builds into the Python package, which serves it at "/" (services/ordo/gateway/static).
// `npm run dev` proxies the API to a gateway on :8080 (ORDO_HTTP_PORT).
export default defineConfig({
  build: { outDir: "../services/ordo/gateway/static", emptyOutDir: true, assetsDir: "assets" },
  server: { proxy: { "/api": "http://127.0.0.1:8080", "/docs": "http://127.0.0.1:8080" } },
});
