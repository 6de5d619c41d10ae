import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The client is imported from its sources in this repository (clients/typescript/src).
const client = fileURLToPath(new URL("../../clients/typescript/src", import.meta.url));

export default defineConfig({
  build: {
    target: "es2022",
    sourcemap: true,
  },
  server: {
    host: "127.0.0.1",
    port: 5173,
    fs: { allow: [".", client] },
  },
});
