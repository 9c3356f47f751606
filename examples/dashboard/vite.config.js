import { defineConfig } from 'vite';

// Relative asset paths: the build works under /dashboard/ of `pulse serve` and on any static host.
export default defineConfig({
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 600 },
});
