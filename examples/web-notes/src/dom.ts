// Small DOM helpers: elements are found by their `data-testid`, which the tests use too.

export function byTestId<T extends HTMLElement = HTMLElement>(id: string, root: ParentNode = document): T {
  const element = root.querySelector<T>(`[data-testid="${id}"]`);
  if (!element) throw new Error(`no element [data-testid="${id}"]`);
  return element;
}

export function show(element: HTMLElement, visible: boolean): void {
  element.hidden = !visible;
}

/** Sets a status line's text and its tone (`""`, `"ok"`, `"warn"`, `"error"`). */
export function say(element: HTMLElement, text: string, tone: "" | "ok" | "warn" | "error" = ""): void {
  element.textContent = text;
  element.classList.toggle("error", tone === "error");
  element.classList.toggle("ok", tone === "ok");
  element.classList.toggle("warn", tone === "warn");
}

/** A short human description of an error from the client. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** "12:04:31", or the date too when not today. */
export function when(iso: string | number): string {
  const date = new Date(iso);
  const today = new Date();
  return date.toDateString() === today.toDateString() ? date.toLocaleTimeString() : date.toLocaleString();
}
