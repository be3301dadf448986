import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/redisServer.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Test files share one Redis server; each file uses its own key prefix or DB, but parallel
    // files still compete for two cores, so keep it modest.
    maxWorkers: 2,
  },
});
