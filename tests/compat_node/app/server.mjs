// Test app for tests/compat_node: functions written with the OFFICIAL `inngest`
// npm SDK, served by plain `node:http` through `inngest/node`'s serve handler.
//
//   PORT=3000 INNGEST_BASE_URL=http://127.0.0.1:8288 node server.mjs
//
// Routes:
//   /api/inngest  the Inngest serve handler (GET/PUT/POST)
//   GET /log      what the functions did, per run id, as JSON (see `record`)
//   POST /send-big  8 events of 1 MiB in one `inngest.send` (see bigBatch)
//   GET /ready    200 once listening
//
// Every function records into an in-memory log keyed by the run id Inngest
// passes in, so the tests can count handler invocations and step-body
// executions of one run without any shared state between runs.
//
// SDK version: `inngest` is pinned to 4.24.0 (package.json + package-lock.json),
// the newest release when this app was written. v4 was chosen over 3.x: it is
// the current major, ships a plain `node:http` handler (`inngest/node`, so no
// web framework is needed) and is what new apps get. Its one wire difference
// that matters here, async checkpointing, is switched on by `ctx.fn_id` /
// `ctx.qi_id` in call requests, which Wayline sends (WAYLINE_CHECKPOINTING=0 on
// the server leaves them out: the classic 206/opcode protocol). Bumping the pin: edit package.json, run `npm install`
// here, and update PINNED_INNGEST in ../test_node_sdk.py.

import http from "node:http";
import { Inngest, NonRetriableError } from "inngest";
import { serve } from "inngest/node";

// PORT=0 picks a free port; the "listening on" line below reports it.
const port = Number.parseInt(process.env.PORT ?? "", 10);
if (!Number.isInteger(port) || port < 0) {
  console.error("server.mjs: set PORT to the port to listen on (0: any free port)");
  process.exit(2);
}

const inngest = new Inngest({
  id: "node-compat",
  // NODE_COMPAT_CLOUD=1 (tests of request signing only): cloud mode, which
  // verifies signatures with INNGEST_SIGNING_KEY and authenticates with it.
  isDev: process.env.NODE_COMPAT_CLOUD !== "1",
  baseUrl: process.env.INNGEST_BASE_URL,
});

// runId -> { fn, handler, attempts: [ctx attempt per handler call],
//            steps: { [stepName]: { count, attempts: [...], at: [ms since epoch] } },
//            events: [...], finished_at }
const runs = {};

function record(runId, fn, attempt) {
  const run = (runs[runId] ??= { fn, handler: 0, attempts: [], steps: {} });
  run.handler += 1;
  run.attempts.push(attempt);
  return run;
}

function stepBody(run, name, attempt) {
  const step = (run.steps[name] ??= { count: 0, attempts: [], at: [] });
  step.count += 1;
  step.attempts.push(attempt);
  step.at.push(Date.now());
  return step.count;
}

const twoSteps = inngest.createFunction(
  { id: "two-steps", retries: 0, triggers: [{ event: "node/two-steps" }] },
  async ({ step, runId, attempt }) => {
    const run = record(runId, "two-steps", attempt);
    const a = await step.run("a", () => {
      stepBody(run, "a", attempt);
      return 1;
    });
    const b = await step.run("b", () => {
      stepBody(run, "b", attempt);
      return { prev: a, value: a + 1 };
    });
    return { a, b };
  },
);

const sleepy = inngest.createFunction(
  { id: "sleepy", retries: 0, triggers: [{ event: "node/sleepy" }] },
  async ({ step, runId, attempt }) => {
    const run = record(runId, "sleepy", attempt);
    const before = await step.run("before", () => {
      stepBody(run, "before", attempt);
      return Date.now();
    });
    await step.sleep("nap", "2s");
    const after = await step.run("after", () => {
      stepBody(run, "after", attempt);
      return Date.now();
    });
    return { slept_ms: after - before };
  },
);

const waiter = inngest.createFunction(
  { id: "waiter", retries: 0, triggers: [{ event: "node/wait" }] },
  async ({ step, runId, attempt }) => {
    record(runId, "waiter", attempt);
    const ev = await step.waitForEvent("wait", {
      event: "node/approve",
      timeout: "5s",
      match: "data.id",
    });
    return { event: ev ?? null };
  },
);

const parallel = inngest.createFunction(
  { id: "parallel", retries: 0, triggers: [{ event: "node/parallel" }] },
  async ({ step, runId, attempt }) => {
    const run = record(runId, "parallel", attempt);
    const [a, b] = await Promise.all([
      step.run("a", () => {
        stepBody(run, "a", attempt);
        return "A";
      }),
      step.run("b", () => {
        stepBody(run, "b", attempt);
        return "B";
      }),
    ]);
    const after = await step.run("after", () => {
      stepBody(run, "after", attempt);
      return `${a}+${b}`;
    });
    return { a, b, after };
  },
);

const child = inngest.createFunction(
  { id: "child", retries: 0, triggers: [{ event: "node/child" }] },
  async ({ event, runId, attempt }) => {
    record(runId, "child", attempt);
    return { x: event.data.x, doubled: event.data.x * 2 };
  },
);

const invoker = inngest.createFunction(
  { id: "invoker", retries: 0, triggers: [{ event: "node/invoke" }] },
  async ({ step, runId, attempt }) => {
    record(runId, "invoker", attempt);
    const result = await step.invoke("call-child", { function: child, data: { x: 1 } });
    return { child: result };
  },
);

const flaky = inngest.createFunction(
  { id: "flaky", retries: 1, triggers: [{ event: "node/flaky" }] },
  async ({ step, runId, attempt }) => {
    const run = record(runId, "flaky", attempt);
    const value = await step.run("wobbly", () => {
      const n = stepBody(run, "wobbly", attempt);
      if (n === 1) {
        throw new Error(`wobbly fails on its first attempt (attempt ${attempt})`);
      }
      return { ok: true, executions: n };
    });
    return { value };
  },
);

const doomed = inngest.createFunction(
  { id: "doomed", retries: 3, triggers: [{ event: "node/doomed" }] },
  async ({ step, runId, attempt }) => {
    const run = record(runId, "doomed", attempt);
    await step.run("fatal", () => {
      stepBody(run, "fatal", attempt);
      throw new NonRetriableError("doomed: not worth retrying");
    });
    return "unreachable";
  },
);

const noSteps = inngest.createFunction(
  { id: "no-steps", retries: 0, triggers: [{ event: "node/no-steps" }] },
  async ({ runId, attempt }) => {
    record(runId, "no-steps", attempt);
    return { hello: "world" };
  },
);

const sender = inngest.createFunction(
  { id: "sender", retries: 0, triggers: [{ event: "node/send" }] },
  async ({ event, step, runId, attempt }) => {
    record(runId, "sender", attempt);
    // The SDK posts the event to `${baseUrl}/e/<key>` itself, inside a step.
    const sent = await step.sendEvent("send-it", {
      name: "node/no-steps",
      data: { from: "sender", tag: event.data.tag },
    });
    return { sent };
  },
);

// Issue 9: a function whose third step fails until POST /fix, for redrive; and a
// signal wait resolved by POST /v1/signals.
let fixed = false;

const redrivable = inngest.createFunction(
  { id: "redrivable", retries: 0, triggers: [{ event: "node/redrive" }] },
  async ({ step, runId, attempt }) => {
    const run = record(runId, "redrivable", attempt);
    const one = await step.run("one", () => (stepBody(run, "one", attempt), 1));
    const two = await step.run("two", () => (stepBody(run, "two", attempt), 2));
    const three = await step.run("three", () => {
      stepBody(run, "three", attempt);
      if (!fixed) throw new NonRetriableError("three is broken until POST /fix");
      return 3;
    });
    return { sum: one + two + three };
  },
);

const signaled = inngest.createFunction(
  { id: "signaled", retries: 0, triggers: [{ event: "node/signal" }] },
  async ({ event, step, runId, attempt }) => {
    record(runId, "signaled", attempt);
    const got = await step.waitForSignal("approval", {
      signal: `approve-${event.data.id}`,
      timeout: "1m",
    });
    return { got };
  },
);

// Issue 15: inngest-py's batch_that_needs_api with the npm SDK. POST /send-big
// sends 8 events of 1 MiB in one `inngest.send` (an 8 MiB request); the batch is
// over the request state limit, so the SDK fetches it with use_api.
const bigBatch = inngest.createFunction(
  {
    id: "big-batch",
    retries: 0,
    triggers: [{ event: "node/big" }],
    batchEvents: { maxSize: 8, timeout: "10s" },
  },
  async ({ events, runId, attempt }) => {
    const run = record(runId, "big-batch", attempt);
    run.events = events.map((e) => [e.data.n, e.data.blob.length]);
    return { events: events.length };
  },
);

// Issue 10: async checkpointing. `many-steps` runs data.n sequential steps, each
// returning data.size characters; the others mix checkpointed steps with a
// sleep, a parallel group, a retried step, and a step held open until
// POST /release (the test cancels the run meanwhile).
const manySteps = inngest.createFunction(
  { id: "many-steps", retries: 0, triggers: [{ event: "node/many" }] },
  async ({ event, step, runId, attempt }) => {
    const run = record(runId, "many-steps", attempt);
    const pad = "x".repeat(event.data.size ?? 0);
    let total = 0;
    for (let i = 0; i < event.data.n; i += 1) {
      const got = await step.run(`s${i}`, () => (stepBody(run, `s${i}`, attempt), { i, pad }));
      total += got.i;
    }
    return { n: event.data.n, total };
  },
);

const sleepSteps = inngest.createFunction(
  { id: "sleep-steps", retries: 0, triggers: [{ event: "node/sleep-steps" }] },
  async ({ step, runId, attempt }) => {
    const run = record(runId, "sleep-steps", attempt);
    const a = await step.run("a", () => (stepBody(run, "a", attempt), "A"));
    await step.sleep("nap", "1s");
    const b = await step.run("b", () => (stepBody(run, "b", attempt), `${a}B`));
    const c = await step.run("c", () => (stepBody(run, "c", attempt), `${b}C`));
    return { c };
  },
);

const parallelTrail = inngest.createFunction(
  { id: "parallel-trail", retries: 0, triggers: [{ event: "node/parallel-trail" }] },
  async ({ step, runId, attempt }) => {
    const run = record(runId, "parallel-trail", attempt);
    const [p, q] = await Promise.all([
      step.run("p", () => (stepBody(run, "p", attempt), 1)),
      step.run("q", () => (stepBody(run, "q", attempt), 2)),
    ]);
    let sum = p + q;
    for (const name of ["t1", "t2", "t3"]) {
      sum += await step.run(name, () => (stepBody(run, name, attempt), 10));
    }
    return { sum };
  },
);

const retryMid = inngest.createFunction(
  { id: "retry-mid", retries: 2, triggers: [{ event: "node/retry-mid" }] },
  async ({ step, runId, attempt }) => {
    const run = record(runId, "retry-mid", attempt);
    const one = await step.run("one", () => (stepBody(run, "one", attempt), 1));
    const two = await step.run("two", () => (stepBody(run, "two", attempt), 2));
    const shaky = await step.run("shaky", () => {
      const n = stepBody(run, "shaky", attempt);
      if (n === 1) throw new Error("shaky fails on its first execution");
      return 3;
    });
    const four = await step.run("four", () => (stepBody(run, "four", attempt), 4));
    const five = await step.run("five", () => (stepBody(run, "five", attempt), 5));
    return { sum: one + two + shaky + four + five };
  },
);

// maxRuntime of 1 ms: at each new step the SDK ends the call and hands the step
// back as StepPlanned (it then runs in a targeted call), as after 10 s by default.
const shortRuntime = inngest.createFunction(
  {
    id: "short-runtime",
    retries: 0,
    triggers: [{ event: "node/short-runtime" }],
    checkpointing: { maxRuntime: 1 },
  },
  async ({ step, runId, attempt }) => {
    const run = record(runId, "short-runtime", attempt);
    let sum = 0;
    for (const name of ["r1", "r2", "r3"]) {
      sum += await step.run(name, async () => {
        stepBody(run, name, attempt);
        await new Promise((resolve) => setTimeout(resolve, 5));
        return 1;
      });
    }
    return { sum };
  },
);

// runId -> resolve function of the held `gate` step
const gates = {};

const held = inngest.createFunction(
  { id: "held", retries: 0, triggers: [{ event: "node/held" }] },
  async ({ step, runId, attempt }) => {
    const run = record(runId, "held", attempt);
    await step.run("first", () => (stepBody(run, "first", attempt), 1));
    await step.run("gate", async () => {
      stepBody(run, "gate", attempt);
      await new Promise((resolve) => {
        gates[runId] = resolve;
      });
      return 2;
    });
    await step.run("after", () => (stepBody(run, "after", attempt), 3));
    return "unreachable once cancelled";
  },
);

// step.fetch: the official `Gateway` op; the server makes the request and
// memoizes {status_code, headers, body}, which the SDK turns back into a Response.
const fetcher = inngest.createFunction(
  { id: "fetcher", retries: 0, triggers: [{ event: "node/fetch" }] },
  async ({ event, step, runId, attempt }) => {
    record(runId, "fetcher", attempt);
    const res = await step.fetch(event.data.url, {
      method: "POST",
      headers: { authorization: "Bearer node-secret", "content-type": "application/json" },
      body: JSON.stringify({ from: "node" }),
    });
    return { status: res.status, body: await res.text(), target: res.headers.get("x-target") };
  },
);

const handler = serve({
  client: inngest,
  functions: [
    twoSteps,
    sleepy,
    waiter,
    parallel,
    child,
    invoker,
    flaky,
    doomed,
    noSteps,
    sender,
    redrivable,
    signaled,
    bigBatch,
    manySteps,
    sleepSteps,
    parallelTrail,
    retryMid,
    held,
    shortRuntime,
    fetcher,
  ],
});

const server = http.createServer((req, res) => {
  const path = (req.url ?? "/").split("?", 1)[0];
  if (path === "/api/inngest") {
    return handler(req, res);
  }
  if (req.method === "GET" && path === "/log") {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ runs }));
  }
  if (req.method === "POST" && path === "/fix") {
    fixed = true;
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ fixed }));
  }
  if (req.method === "POST" && path === "/send-big") {
    const events = Array.from({ length: 8 }, (_, n) => ({
      name: "node/big",
      data: { n, blob: String.fromCharCode(97 + n).repeat(1024 * 1024) },
    }));
    return inngest.send(events).then(
      ({ ids }) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ ids }));
      },
      (err) => {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: String(err) }));
      },
    );
  }
  if (req.method === "POST" && path === "/release") {
    const runId = new URL(req.url, "http://x").searchParams.get("run") ?? "";
    const release = gates[runId];
    if (release) release();
    res.writeHead(release ? 200 : 404, { "content-type": "application/json" });
    return res.end(JSON.stringify({ released: Boolean(release) }));
  }
  if (req.method === "GET" && path === "/ready") {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ ok: true }));
  }
  res.writeHead(404, { "content-type": "application/json" });
  return res.end(JSON.stringify({ error: `no route ${req.method} ${path}` }));
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}

server.listen(port, "127.0.0.1", () => {
  const { port: bound } = server.address();
  console.error(`node-compat app listening on http://127.0.0.1:${bound}/api/inngest`);
});
