// The import rules `npm test` holds the code to (npm run deps): no cycles, and src/ never imports
// the commands or jobs that sit on top of it, except the composition root that registers them.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "An import cycle: move the shared part down into a module both can import.",
      from: {},
      to: { circular: true },
    },
    {
      name: "src-does-not-import-commands-or-jobs",
      severity: "error",
      comment: "commands/ and jobs/ depend on src/; only the composition root (src/app.ts) registers them.",
      from: { path: "^src/", pathNot: "^src/app\\.ts$" },
      to: { path: "^(commands|jobs)/" },
    },
    {
      name: "nothing-below-reaches-for-the-app",
      severity: "error",
      comment: "The App is the composition root's product, not a service locator: declare the narrow services a module uses instead.",
      from: { path: "^(src|commands|jobs)/", pathNot: "^src/(main|banner)\\.ts$" },
      to: { path: "^src/app\\.ts$" },
    },
    {
      name: "core-does-not-import-adapters-upward",
      severity: "error",
      comment: "The pure core (domain, risk, decision, indicators, engine) imports no service or adapter.",
      from: { path: "^src/(domain|risk/rules|risk/var|decision|indicators|engine)" },
      to: { path: "^src/(app|chat|models|pipeline|orders|queue|payments|exchange/ccxt)" },
    },
    {
      name: "strategies-use-only-the-pure-core",
      severity: "error",
      comment: "A strategy file is a pure function of its context: it may import the domain types, the strategy types and pure helpers, never a service or adapter.",
      from: { path: "^strategies/" },
      to: { path: "^src/", pathNot: "^src/(domain|strategy/types|indicators|decision/schema)" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
