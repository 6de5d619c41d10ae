// The published declarations, as a Node consumer compiles them: no DOM lib, only @types/node.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");

const consumer = `
import { createClient, IndexedDbRowStore, MemoryRowStore, MemoryTokenStore } from "@auth-skeleton/client";

interface Note {
  title: string;
  tags?: string[];
}

const client = createClient({ baseUrl: "http://127.0.0.1:8080", session: { mode: "bearer", tokens: new MemoryTokenStore() } });
const rows = client.rows(new MemoryRowStore());
const note: Note = { title: "hello" };
export const written = rows.put("notes", "n1", note);
export const opened = IndexedDbRowStore.open({ name: "rows" });
`;

describe("declarations", () => {
  it("compile for a Node consumer without the DOM lib, with an interface as row data", () => {
    const dir = mkdtempSync(join(tmpdir(), "ts-client-consumer-"));
    try {
      const pkg = join(dir, "pkg");
      const built = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.json"), "--emitDeclarationOnly", "--declarationMap", "false", "--outDir", join(pkg, "dist")], { encoding: "utf8" });
      assert.equal(built.status, 0, built.stdout + built.stderr);
      copyFileSync(join(root, "package.json"), join(pkg, "package.json"));
      const app = join(dir, "app");
      mkdirSync(join(app, "node_modules", "@auth-skeleton"), { recursive: true });
      symlinkSync(pkg, join(app, "node_modules", "@auth-skeleton", "client"), "dir");
      symlinkSync(join(root, "node_modules", "@types"), join(app, "node_modules", "@types"), "dir");
      writeFileSync(join(app, "package.json"), JSON.stringify({ name: "consumer", type: "module", private: true }));
      writeFileSync(join(app, "main.ts"), consumer);
      writeFileSync(
        join(app, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2022"], types: ["node"], strict: true, noEmit: true, skipLibCheck: false },
          files: ["main.ts"],
        }),
      );
      const checked = spawnSync(process.execPath, [tsc, "-p", join(app, "tsconfig.json")], { encoding: "utf8" });
      assert.equal(checked.status, 0, checked.stdout + checked.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
