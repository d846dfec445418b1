// The static dashboard's build: one IIFE script and one stylesheet, written into the Python
// package (src/saescope/web_dist/), where the dashboard writer inlines them into each HTML file.
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  build: {
    outDir: resolve(here, "../src/saescope/web_dist"),
    emptyOutDir: true,
    target: "es2020",
    cssCodeSplit: false,
    lib: {
      entry: resolve(here, "src/dashboard/main.ts"),
      name: "saescopeDashboard",
      formats: ["iife"],
      fileName: () => "dashboard.js",
      cssFileName: "dashboard",
    },
  },
});
