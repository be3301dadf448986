import { randomUUID } from "node:crypto";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Where rolled-up ledger entries go before Redis lets go of them. */
export interface LedgerArchive {
  /** Appends the lines to the month's archive; resolves only once they are on disk. */
  append(month: string, lines: string[]): Promise<void>;
  /**
   * This archive's identity (made the first time it is asked), so the rollup can tell that every
   * worker writes to the same archive, and never splits it between containers or machines.
   */
  id?(): Promise<string>;
  /** Where it is, for messages. */
  where?: string;
}

/** One JSON object per line, as written to the archive. */
export type ArchiveLine =
  | { kind: "decision"; day: string; record: unknown }
  | { kind: "charge"; day: string; record: unknown };

/** The file that names an archive folder (see LedgerArchive.id). */
export const ARCHIVE_ID_FILE = "archive-id";

/**
 * One JSONL file per month (ledger-YYYY-MM.jsonl) in `dir`. Appends are fsynced, and so is the
 * folder when a month's file is new, so a crash right after an append cannot lose its lines.
 */
export class JsonlArchive implements LedgerArchive {
  constructor(readonly dir: string) {}

  get where(): string {
    return this.dir;
  }

  /** The id in ARCHIVE_ID_FILE, made (exclusively, so two workers agree) when the folder has none. */
  async id(): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const file = join(this.dir, ARCHIVE_ID_FILE);
    try {
      await writeFile(file, randomUUID() + "\n", { flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    return (await readFile(file, "utf8")).trim();
  }

  fileFor(month: string): string {
    if (!/^\d{4}-\d{2}$/.test(month)) throw new Error(`archive month must be YYYY-MM, got ${JSON.stringify(month)}`);
    return join(this.dir, `ledger-${month}.jsonl`);
  }

  async append(month: string, lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    await mkdir(this.dir, { recursive: true });
    const file = this.fileFor(month);
    const fh = await open(file, "a");
    let created: boolean;
    try {
      created = (await fh.stat()).size === 0;
      await fh.writeFile(lines.map((l) => l + "\n").join(""));
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (created) {
      const d = await open(this.dir, "r");
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    }
  }

  /** Every line of a month's archive, parsed (what a restore or an audit reads back). */
  async read(month: string): Promise<ArchiveLine[]> {
    const text = await readFile(this.fileFor(month), "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return "";
      throw err;
    });
    return text
      .split("\n")
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as ArchiveLine);
  }
}
