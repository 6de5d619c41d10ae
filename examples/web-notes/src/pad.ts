// The scratchpad: one text kept as the user's save blob in app-blob. A save is written only over
// the version it was based on; when someone saved in between, the person chooses: keep mine, take
// theirs, or merge both.

import { BlobSave, UnauthenticatedError, type Client, type Conflict, type ConflictResolution, type SaveMeta } from "./client.js";
import { byTestId, describe, show, when } from "./dom.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

type PadState = "loading" | "saved" | "empty" | "dirty" | "stale" | "saving" | "conflict" | "error";

/**
 * Merge both: every line of theirs, in their order, then the lines of mine that theirs lacks, in
 * mine's order. Nothing either side wrote is lost; the person tidies up afterwards.
 */
export function mergeLines(mine: string, theirs: string): string {
  const theirLines = theirs.split("\n");
  const seen = new Set(theirLines);
  const added = mine.split("\n").filter((line) => line.trim() !== "" && !seen.has(line));
  if (added.length === 0) return theirs;
  const head = theirs.endsWith("\n") || theirs === "" ? theirs : `${theirs}\n`;
  return head + added.join("\n");
}

export class PadView {
  private readonly save: BlobSave;
  private readonly text = byTestId<HTMLTextAreaElement>("pad");
  private readonly status = byTestId("pad-status");
  private readonly saveButton = byTestId<HTMLButtonElement>("save-pad");
  private readonly reloadButton = byTestId<HTMLButtonElement>("reload-pad");
  private readonly conflict = byTestId("conflict");
  /** The text of the version this page is based on (`save.version`). */
  private savedText = "";
  private savedAt: string | null = null;
  private newerElsewhere = false;
  private state: PadState = "loading";
  private readonly stop = new AbortController();
  private readonly cleanups: Array<() => void> = [];

  private constructor(client: Client) {
    this.save = client.blob({ backoff: { initialMs: 300, maxMs: 5_000 }, maxAttempts: 3 });
  }

  static async open(client: Client, onSignedOut: () => void): Promise<PadView> {
    const view = new PadView(client);
    view.bind();
    await view.reload();
    void view.watch(onSignedOut);
    return view;
  }

  close(): void {
    this.stop.abort();
    for (const off of this.cleanups.splice(0)) off();
    this.text.value = "";
    show(this.conflict, false);
  }

  private listen<K extends keyof HTMLElementEventMap>(element: HTMLElement, type: K, fn: (event: HTMLElementEventMap[K]) => void): void {
    element.addEventListener(type, fn);
    this.cleanups.push(() => element.removeEventListener(type, fn));
  }

  private bind(): void {
    this.listen(this.text, "input", () => this.refresh());
    this.listen(this.saveButton, "click", () => void this.write());
    this.listen(this.reloadButton, "click", () => void this.reload(true));
  }

  private get dirty(): boolean {
    return this.text.value !== this.savedText;
  }

  /** Loads the saved version; unless `force`, local edits are kept (the status says a newer one exists). */
  private async reload(force = false): Promise<void> {
    if (!force && this.dirty && this.state !== "loading") {
      // The edit stays based on the version it started from, so saving it asks about the conflict.
      this.newerElsewhere = true;
      this.refresh();
      return;
    }
    try {
      const loaded = await this.save.load(this.stop.signal);
      this.savedText = loaded ? decoder.decode(loaded.bytes) : "";
      this.text.value = this.savedText;
      this.newerElsewhere = false;
      this.savedAt = loaded ? ((await this.save.meta(this.stop.signal))?.updated_at ?? null) : null;
      this.setState(loaded ? "saved" : "empty");
    } catch (err) {
      this.fail(err);
    }
  }

  /** Long-polls the save's version and brings in other devices' saves while nothing is edited here. */
  private async watch(onSignedOut: () => void): Promise<void> {
    const signal = this.stop.signal;
    while (!signal.aborted) {
      try {
        const change = await this.save.waitForChange({ waitSeconds: 25, signal });
        if (!change.changed) continue;
        // Our own write, seen by a poll that started before it.
        if (change.meta && change.meta.version === this.save.version) continue;
        if (this.state === "saving" || this.state === "conflict") {
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        await this.reload();
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof UnauthenticatedError) {
          onSignedOut();
          return;
        }
        this.fail(err);
        await new Promise((r) => setTimeout(r, 2_000));
      }
    }
  }

  private async write(): Promise<void> {
    const mine = this.text.value;
    this.setState("saving");
    try {
      const result = await this.save.save(encoder.encode(mine), {
        signal: this.stop.signal,
        onConflict: (conflict) => this.askAboutConflict(conflict),
      });
      this.savedText = result.bytes ? decoder.decode(result.bytes) : "";
      this.savedAt = result.meta?.updated_at ?? null;
      this.newerElsewhere = false;
      // Keep what was typed while the save was on its way, unless the person took theirs.
      if (result.outcome !== "saved" || this.text.value === mine) this.text.value = this.savedText;
      this.setState(result.meta ? "saved" : "empty");
    } catch (err) {
      this.fail(err);
    } finally {
      show(this.conflict, false);
    }
  }

  /** Shows both sides and waits for the person's choice. */
  private askAboutConflict(conflict: Conflict): Promise<ConflictResolution> {
    const mine = decoder.decode(conflict.mine);
    const theirs = conflict.theirs ? decoder.decode(conflict.theirs.bytes) : "";
    byTestId("conflict-mine").textContent = mine;
    byTestId("conflict-theirs").textContent = conflict.theirs ? theirs : "(deleted)";
    byTestId("conflict-theirs-when").textContent = describeMeta(conflict.theirs?.meta ?? null);
    show(this.conflict, true);
    this.setState("conflict");
    this.conflict.scrollIntoView({ block: "nearest" });
    return new Promise((resolve) => {
      const choose = (resolution: ConflictResolution) => () => {
        for (const off of offs) off();
        show(this.conflict, false);
        this.setState("saving");
        resolve(resolution);
      };
      const buttons: Array<[string, ConflictResolution]> = [
        ["conflict-keep-mine", { keep: "mine" }],
        ["conflict-take-theirs", { keep: "theirs" }],
        ["conflict-merge", { merged: encoder.encode(mergeLines(mine, theirs)) }],
      ];
      const offs = buttons.map(([id, resolution]) => {
        const button = byTestId<HTMLButtonElement>(id);
        const onClick = choose(resolution);
        button.addEventListener("click", onClick, { once: true });
        return () => button.removeEventListener("click", onClick);
      });
      // Sign-out while the question is open: write nothing.
      this.stop.signal.addEventListener("abort", choose({ keep: "theirs" }), { once: true });
    });
  }

  private fail(err: unknown): void {
    if (this.stop.signal.aborted) return;
    this.status.title = describe(err);
    this.setState("error");
  }

  private setState(state: PadState): void {
    this.state = state;
    this.refresh();
  }

  /** The status chip, from the state and whether the text differs from the saved version. */
  private refresh(): void {
    let state: PadState = this.state;
    if ((state === "saved" || state === "empty") && this.dirty) state = this.newerElsewhere ? "stale" : "dirty";
    const labels: Record<PadState, [string, string]> = {
      loading: ["Loading…", ""],
      saved: [this.savedAt ? `Saved ${when(this.savedAt)}` : "Saved", "ok"],
      empty: ["Nothing saved yet", ""],
      dirty: ["Unsaved changes", "warn"],
      stale: ["Unsaved · newer version elsewhere", "warn"],
      saving: ["Saving…", ""],
      conflict: ["Conflict: choose below", "bad"],
      error: [`Not saved: ${this.status.title || "error"}`, "bad"],
    };
    const [label, tone] = labels[state];
    this.status.textContent = label;
    this.status.className = `chip ${tone}`;
    this.status.dataset["state"] = state;
    this.saveButton.disabled = state === "saving" || state === "conflict";
    this.reloadButton.disabled = state === "saving" || state === "conflict";
  }
}

function describeMeta(meta: SaveMeta | null): string {
  if (!meta) return "—";
  const device = meta.device_name ? ` from ${meta.device_name}` : "";
  return meta.updated_at ? `${when(meta.updated_at)}${device}` : `just now${device}`;
}
