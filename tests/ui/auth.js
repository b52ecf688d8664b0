// The web UI's token handling in Node against a live scheduler that has
// --api-tokens: the page's own script with a stub window whose prompt gives
// TOKEN, and the real API through fetch. Usage: node auth.js SCRIPT.js
// BASE_URL TOKEN. Prints one line per check, "ok - ..." or "not ok - ...".
"use strict";
const fs = require("fs");
const [script, base, token] = process.argv.slice(2);
const realFetch = global.fetch;
const noop = new Proxy(function () {}, {
  get: (t, k) => (k === Symbol.toPrimitive ? () => "" : noop),
  apply: () => noop,
});
const store = {};
let prompts = 0, answer = token;
const win = {
  sessionStorage: { getItem: (k) => (k in store ? store[k] : null), setItem: (k, v) => { store[k] = v; } },
  prompt: () => { prompts++; return answer; },
  addEventListener: () => {},
};
const sent = [];
const code = fs.readFileSync(script, "utf8");
const page = new Function("document", "window", "location", "addEventListener", "setTimeout",
  "clearTimeout", "setInterval", "fetch",
  code + "\nreturn { api, viewDags };")(
  noop, win, { hash: "#/dags" }, () => {}, () => 0, () => {}, () => 0,
  (path, opts) => { sent.push(opts && opts.headers && opts.headers.Authorization); return realFetch(base + "/" + path, opts); });
let failed = 0;
const check = (what, cond) => {
  console.log((cond ? "ok - " : "not ok - ") + what);
  if (!cond) failed++;
};
(async () => {
  const [a, b] = await Promise.all([page.api("dags"), page.api("runs")]);
  check("the page gets its answers after a 401", a && Array.isArray(a.dags) && b && Array.isArray(b.runs));
  check("it asked for the token once for two requests", prompts === 1);
  check("the token is kept in sessionStorage", Object.values(store).includes(token));
  const before = prompts;
  await page.api("workers");
  check("a later request sends it without asking", prompts === before && sent[sent.length - 1] === "Bearer " + token);
  for (const k of Object.keys(store)) store[k] = "cairn_wrong";
  answer = token;
  await page.api("dags");
  check("a refused token is asked for again", prompts === before + 1);
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log("not ok - " + e.stack); process.exit(1); });
