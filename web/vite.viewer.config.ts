// The web viewer's build: a single-page app (src/pages/) written into the Python package
// (src/saescope/web_dist/viewer/), which `saescope serve` serves from the API's origin.
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root: resolve(here, "src/pages"),
  base: "./",
  build: {
    outDir: resolve(here, "../src/saescope/web_dist/viewer"),
    emptyOutDir: true,
    target: "es2020",
  },
});
