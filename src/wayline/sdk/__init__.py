"""Wayline's Python SDK: durable functions served over Inngest's SDK protocol.

The public names are re-exported from :mod:`wayline`; framework adapters live in
``wayline.fastapi``, ``wayline.flask``, ``wayline.django``, ``wayline.starlette`` and
``wayline.aws_lambda``, the in-process test runner in ``wayline.testing``.

Module map (one idea each)::

    config        client settings: arguments, then WAYLINE_*, then INNGEST_*
    client        Wayline: the function decorator, send / send_async
    function      Function: handler + triggers + options -> FunctionConfig JSON
    options       frozen option models (Concurrency, Throttle, ...) -> FunctionConfig keys
    triggers      TriggerEvent (optionally typed), TriggerCron
    events        Event, and its wire form
    planner       PURE replay rules: memo lookup, step ids, parallel, targeting
    execution     the core shared by both shells: outcomes -> opcodes / responses
    steps         ctx.step / ctx.group: thin async and sync shells over the core
    intents       step arguments -> planner intents (durations, match -> if, payloads)
    context       Context (async def) and SyncContext (def)
    call          one call of a handler: context in, CallResult out
    protocol      wire models: call requests in, opcodes and headers out
    effects       sans-I/O flows with a blocking and an asyncio driver; httpx transport
    comm          the framework-agnostic serve endpoint (GET / PUT / POST, signatures)
    registration  sync bodies and introspection
    sending       the EventSender seam and the HTTP event API sender
    serialize     JSON in and out of user code (pydantic, dataclasses)
"""
