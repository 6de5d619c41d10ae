import type { Row } from "./types.js";

/** The largest `counter` the contract allows. */
export const MAX_COUNTER = 2_147_483_647;
/** The largest `ts` the contract allows (2^53 - 1). */
export const MAX_TS = Number.MAX_SAFE_INTEGER;

/** A clock reading (without the node). */
export interface ClockState {
  ts: number;
  counter: number;
}

/** A version `(ts, counter, node)`. */
export interface Version {
  ts: number;
  counter: number;
  node: string;
}

/** Compares two node ids byte by byte (they are ASCII, so UTF-16 code units agree). */
function compareNodes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Compares versions as the contract does: `ts`, then `counter`, then `node` by bytes. */
export function compareVersions(a: Version, b: Version): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  return compareNodes(a.node, b.node);
}

/** True when two rows carry the same version (the same write). */
export function sameVersion(a: Row, b: Row): boolean {
  return a.ts === b.ts && a.counter === b.counter && a.node === b.node;
}

/**
 * A hybrid logical clock: follows the physical clock, never goes back, and moves past every
 * version (and `server_time`) observed, so a local write beats what the device had seen.
 */
export class Hlc {
  private state: ClockState;

  constructor(state: ClockState = { ts: 0, counter: 0 }) {
    this.state = { ts: state.ts, counter: state.counter };
  }

  /** The last reading or observation. */
  get current(): ClockState {
    return { ...this.state };
  }

  /** A reading for a local write, later than every reading and observation before it. */
  tick(physicalMs: number): ClockState {
    const now = Math.min(Math.max(0, Math.floor(physicalMs)), MAX_TS);
    if (now > this.state.ts) {
      this.state = { ts: now, counter: 0 };
    } else if (this.state.counter >= MAX_COUNTER) {
      // At the ceiling the counter carries into the next millisecond rather than past it.
      this.state = { ts: this.state.ts + 1, counter: 0 };
    } else {
      this.state = { ts: this.state.ts, counter: this.state.counter + 1 };
    }
    return { ...this.state };
  }

  /** Moves past a version or time the device has seen. */
  observe(ts: number, counter: number = 0): void {
    if (ts > this.state.ts || (ts === this.state.ts && counter > this.state.counter)) {
      this.state = { ts, counter };
    }
  }
}

/** A fresh node id: 16 random bytes as hex (fits `[A-Za-z0-9._:-]{1,64}`). */
export function randomNodeId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
