// The TypeScript client, from its sources in this repository.
export * from "../../../clients/typescript/src/index.js";
