// docker-compose.yml and the Dockerfile cannot be run here (no Docker engine): these checks keep
// them in step with the code that reads them. The compose file was also checked against the
// compose-spec JSON schema when it was written (docs/operations.md says how to run that again).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CONFIG_KEYS } from "../src/config/config.js";

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), "utf8");

describe("deployment files", () => {
  const compose = read("docker-compose.yml");
  const dockerfile = read("Dockerfile");
  const init = read("secrets/init.sh");

  it("compose hands every secret to the agent as a Docker secret, read through KEY_FILE", () => {
    const secrets = CONFIG_KEYS.filter((k) => k.secret).map((k) => k.key);
    expect(secrets.length).toBeGreaterThanOrEqual(7);
    for (const key of secrets) {
      const name = key.toLowerCase();
      expect(compose, key).toContain(`${key}_FILE: /run/secrets/${name}`);
      expect(compose, key).toContain(`  ${name}:\n    file: ./secrets/${name}`);
      expect(compose, key).toMatch(new RegExp(`secrets:\\n(\\s+- \\w+\\n)*\\s+- ${name}\\n`));
      expect(init, key).toContain(name);
    }
    // Never copied into an image, never committed.
    expect(read(".dockerignore")).toMatch(/^secrets$/m);
    expect(read("secrets/.gitignore")).toMatch(/^\*$/m);
  });

  it("every agent service mounts the one ledger archive, and every service's logs rotate", () => {
    expect(compose).toContain("LEDGER_ARCHIVE_DIR: /app/archive");
    const services = compose.split(/\n  (?=frontend:|worker:|console:)/).slice(1);
    expect(services).toHaveLength(3);
    for (const s of services) expect(s, s.slice(0, 20)).toContain("- ledger-archive:/app/archive");
    expect(compose).toMatch(/^volumes:[\s\S]*\n  ledger-archive:/m);
    expect(compose).toMatch(/logging: &logging\n\s+driver: json-file\n\s+options:\n(\s+#.*\n)?\s+max-size: "10m"\n\s+max-file: "5"/);
    expect(compose).toContain("logging: *logging");
  });

  it("the image checks its own health on the default metrics port, and runs node as start:prod does", () => {
    expect(dockerfile).toMatch(/^ENV METRICS_PORT=9464 METRICS_HOST=0\.0\.0\.0$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\\\n\s+CMD \["node", "-e", "fetch\('http:\/\/127\.0\.0\.1:' \+ \(process\.env\.METRICS_PORT \|\| 9464\) \+ '\/healthz'\)/m);
    const startProd = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts["start:prod"]!;
    const nodeArgs = /exec node (.+)$/.exec(startProd)![1]!.split(" ");
    expect(dockerfile).toContain(`CMD ${JSON.stringify(["node", ...nodeArgs])}`.replace(/","/g, '", "'));
  });
});
