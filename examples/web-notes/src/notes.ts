// The notes: rows of the collection `notes` in app-rows, kept in IndexedDB and synced by the
// client's loop (long-polls bring other devices' edits within a moment).

import { IndexedDbRowStore, RowsSync, type LiveRow, type SyncStatus } from "./client.js";
import type { Http } from "./client.js";
import { byTestId, describe, say, show, when } from "./dom.js";

const COLLECTION = "notes";

interface NoteData {
  text: string;
  /** ms since the epoch, when the note was made (orders the list). */
  created: number;
  [key: string]: string | number;
}

function noteData(row: LiveRow): NoteData {
  const text = typeof row.data["text"] === "string" ? row.data["text"] : "";
  const created = typeof row.data["created"] === "number" ? row.data["created"] : row.ts;
  return { text, created };
}

export class NotesView {
  private readonly sync: RowsSync;
  private readonly list = byTestId<HTMLUListElement>("notes");
  private readonly empty = byTestId("notes-empty");
  private readonly count = byTestId("note-count");
  private readonly status = byTestId("sync-status");
  private readonly form = byTestId<HTMLFormElement>("add-form");
  private readonly input = byTestId<HTMLInputElement>("new-note");
  private readonly unsubscribe: Array<() => void> = [];
  private rendering = false;
  private renderAgain = false;

  private constructor(sync: RowsSync) {
    this.sync = sync;
  }

  /** Opens this user's local store and starts syncing. */
  static async open(http: Http, userId: string, onSignedOut: () => void): Promise<NotesView> {
    const store = await IndexedDbRowStore.open({ name: `web-notes-rows-${userId}` });
    const sync = new RowsSync(http, store, { waitSeconds: 25, backoff: { initialMs: 500, maxMs: 10_000 } });
    const view = new NotesView(sync);
    view.bind(onSignedOut);
    await sync.whenReady();
    await view.render();
    sync.start();
    return view;
  }

  private bind(onSignedOut: () => void): void {
    this.unsubscribe.push(this.sync.subscribe(() => this.queueRender()));
    this.unsubscribe.push(
      this.sync.on("status", (status) => {
        void this.showStatus(status);
        if (status.state === "unauthenticated") onSignedOut();
      }),
    );
    this.unsubscribe.push(
      this.sync.on("rejected", (rejection) => {
        say(byTestId("app-error"), `The server refused a note (${rejection.reason}); the list shows what it holds.`, "error");
        show(byTestId("app-error"), true);
      }),
    );
    const onSubmit = (event: SubmitEvent) => {
      event.preventDefault();
      const text = this.input.value.trim();
      if (!text) return;
      this.input.value = "";
      void this.sync.put(COLLECTION, crypto.randomUUID(), { text, created: Date.now() });
    };
    this.form.addEventListener("submit", onSubmit);
    this.unsubscribe.push(() => this.form.removeEventListener("submit", onSubmit));
    // Coming back online, or back to the tab: sync now rather than at the end of a back-off.
    const onOnline = () => this.sync.wake();
    window.addEventListener("online", onOnline);
    this.unsubscribe.push(() => window.removeEventListener("online", onOnline));
    const onVisible = () => {
      if (document.visibilityState === "visible") this.sync.wake();
    };
    document.addEventListener("visibilitychange", onVisible);
    this.unsubscribe.push(() => document.removeEventListener("visibilitychange", onVisible));
    const onOffline = () => void this.showStatus(this.sync.status);
    window.addEventListener("offline", onOffline);
    this.unsubscribe.push(() => window.removeEventListener("offline", onOffline));
  }

  /** Stops syncing and empties the list (sign-out). */
  async close(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    await this.sync.stop();
    this.list.replaceChildren();
  }

  private async showStatus(status: SyncStatus): Promise<void> {
    const pending = await this.sync.pendingCount().catch(() => 0);
    this.status.dataset["state"] = status.state;
    let text: string;
    let tone: "" | "ok" | "warn" | "error" = "";
    switch (status.state) {
      case "idle":
        text = pending > 0 ? `${pending} unsent` : "Synced";
        tone = pending > 0 ? "warn" : "ok";
        break;
      case "syncing":
        text = "Syncing…";
        break;
      case "backoff":
        text = navigator.onLine ? `Retrying… ${pending} unsent` : `Offline · ${pending} unsent`;
        tone = "warn";
        break;
      case "unauthenticated":
        text = "Signed out";
        tone = "error";
        break;
      case "stopped":
        text = "Stopped";
        break;
    }
    if (!navigator.onLine && status.state !== "unauthenticated") {
      text = `Offline · ${pending} unsent`;
      tone = "warn";
    }
    this.status.textContent = text;
    this.status.className = `chip ${tone}`;
  }

  /** Renders soon; renders never overlap, and a change during one brings one more. */
  private queueRender(): void {
    if (this.rendering) {
      this.renderAgain = true;
      return;
    }
    this.rendering = true;
    void (async () => {
      try {
        do {
          this.renderAgain = false;
          await this.render();
        } while (this.renderAgain);
      } catch (err) {
        console.error("render", err);
      } finally {
        this.rendering = false;
      }
    })();
  }

  /** Brings the list in line with the store, keeping the element (and the caret) of a note being edited. */
  private async render(): Promise<void> {
    const rows = await this.sync.list(COLLECTION);
    const pending = new Set((await this.sync.store.outbox()).map((row) => row.id));
    rows.sort((a, b) => noteData(b).created - noteData(a).created || (a.id < b.id ? -1 : 1));
    const existing = new Map<string, HTMLLIElement>();
    for (const li of Array.from(this.list.children) as HTMLLIElement[]) existing.set(li.dataset["id"] ?? "", li);
    const ordered: HTMLLIElement[] = [];
    for (const row of rows) {
      const li = existing.get(row.id) ?? this.item(row.id);
      existing.delete(row.id);
      const { text } = noteData(row);
      const field = li.querySelector("input") as HTMLInputElement;
      if (document.activeElement !== field && field.value !== text) field.value = text;
      li.dataset["text"] = text;
      li.classList.toggle("pending", pending.has(row.id));
      (li.querySelector(".when") as HTMLElement).textContent = when(row.ts);
      ordered.push(li);
    }
    for (const gone of existing.values()) gone.remove();
    ordered.forEach((li, index) => {
      if (this.list.children[index] !== li) this.list.insertBefore(li, this.list.children[index] ?? null);
    });
    this.count.textContent = rows.length === 1 ? "1 note" : `${rows.length} notes`;
    show(this.empty, rows.length === 0);
    void this.showStatus(this.sync.status);
  }

  private item(id: string): HTMLLIElement {
    const li = document.createElement("li");
    li.dataset["id"] = id;
    li.dataset["testid"] = "note";
    const field = document.createElement("input");
    field.type = "text";
    field.maxLength = 2000;
    field.setAttribute("aria-label", "Note");
    field.dataset["testid"] = "note-text";
    const stamp = document.createElement("span");
    stamp.className = "when";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "danger";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", "Delete note");
    remove.dataset["testid"] = "delete-note";
    li.append(field, stamp, remove);

    let timer: ReturnType<typeof setTimeout> | undefined;
    const commit = async () => {
      clearTimeout(timer);
      const current = await this.sync.get(COLLECTION, id);
      if (!current) return;
      const text = field.value;
      if (current["text"] === text) return;
      await this.sync.put(COLLECTION, id, { ...current, text });
    };
    const fail = (err: unknown) => {
      say(byTestId("app-error"), describe(err), "error");
      show(byTestId("app-error"), true);
    };
    field.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => void commit().catch(fail), 400);
    });
    field.addEventListener("change", () => void commit().catch(fail));
    field.addEventListener("keydown", (event) => {
      if (event.key === "Enter") field.blur();
    });
    field.addEventListener("blur", () => {
      void commit()
        .catch(fail)
        .then(() => this.queueRender());
    });
    remove.addEventListener("click", () => void this.sync.delete(COLLECTION, id).catch(fail));
    return li;
  }
}
