export * from "./client.js";
export * from "./errors.js";
export * from "./gate.js";
export * from "./receipts.js";
export type * from "./types.js";
